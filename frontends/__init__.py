"""The front ends at the end of the flow: the `audit` command line, Sentry alerts, the watch
loop, the reports and the demo.

They read findings through `queries` and the store through `collectors`; nothing in
`audit` (what services import) or below imports them. Installed with the ``cli`` extra:
``pip install 'conflict-audit[cli]'``.
"""
