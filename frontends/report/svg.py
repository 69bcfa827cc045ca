"""A finding's swimlane as inline SVG: time across, one lane per writer, a mark per write.

Modelled on Porcupine's history view: lanes per client, operations placed in time, the
problem highlighted. Races happen milliseconds apart inside minutes of quiet, so the time
axis is compressed: writes keep their order in time and gaps grow with the logarithm of the
time between them, and the axis says how long each gap really was.

Everything from the store is user data and goes through ``escape``; nothing is interpolated
into a script or a style.
"""

from __future__ import annotations

import math
from html import escape

from frontends.report.model import Swimlane, Write, from_us
from frontends.report.values import NOT_READ, ellipsis, full, label
from frontends.report.values import attr as _a

LEFT = 132  # lane names
RIGHT = 84  # room for the last label
LANE_H = 64
TOP = 6
AXIS_H = 40
MIN_GAP = 78  # px between consecutive writes: two labels in a lane alternate above/below
MAX_GAP = 170
LABEL_CHARS = 18
MIN_SCALE = 0.75
PALETTE_SIZE = 8


def gap_px(delta_us: int) -> float:
    ms = max(0, delta_us) / 1000
    return min(MAX_GAP, MIN_GAP + 30 * math.log10(1 + ms))


def duration(delta_us: int) -> str:
    """A short human duration: ``+0 ms``, ``+120 ms``, ``+1.5 s``, ``+3 min``."""
    us = abs(delta_us)
    sign = "-" if delta_us < 0 else "+"
    if us < 1_000:
        return f"{sign}{us} µs" if us else "+0 ms"
    if us < 1_000_000:
        return f"{sign}{us / 1000:.0f} ms"
    if us < 60_000_000:
        return f"{sign}{us / 1e6:.3g} s"
    if us < 3_600_000_000:
        return f"{sign}{us / 6e7:.3g} min"
    if us < 86_400_000_000:
        return f"{sign}{us / 3.6e9:.3g} h"
    return f"{sign}{us / 8.64e10:.3g} d"


def clock(us: int) -> str:
    """The time of day (UTC) to the millisecond, of any moment: also of one outside the
    years 1 to 9999 that a Python datetime holds (the store may have those)."""
    ms = us // 1000 % 86_400_000
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def iso(us: int | None) -> str:
    if us is None:
        return "—"
    try:
        return from_us(us).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return f"{us:,} µs from 1970-01-01T00:00:00Z (outside the years 1 to 9999)"


def tooltip(write: Write, lane: Swimlane) -> str:
    n = lane.witness_number(write.event_id)
    lines = [
        (f"witness W{n} — " if n else "") + f"{write.writer}"
        + (f" ({write.actor})" if write.actor else ""),
        f"at {iso(write.ts_us)}",
        f"event {write.event_id}" + (f", write {write.write_id}" if write.write_id else ""),
    ]
    if write.version is not None or write.base_version is not None:
        lines.append(
            f"version {write.version if write.version is not None else '?'}"
            + (f", had read version {write.base_version}" if write.base_version is not None
               else "")
        )
    if write.source_ts_us is not None:
        lines.append(f"data produced at its source at {iso(write.source_ts_us)}")
    if write.trace_id:
        lines.append(f"trace {write.trace_id}")
    old = NOT_READ if write.blind else full(write.old)
    lines.append(f"{write.change}: {old}  →  {full(write.new)}")
    if write.event_id in lane.overwritten:
        lines.append("this value was overwritten by a later witness")
    return "\n".join(lines)


def _x_positions(lane: Swimlane) -> list[float]:
    """x of each write (commit order), placed by time; commit-order ties keep their order."""
    order = sorted(range(len(lane.writes)), key=lambda i: (lane.writes[i].ts_us, i))
    xs = [0.0] * len(lane.writes)
    x = LEFT + MIN_GAP * 0.9 + (24 if 0 in lane.hidden else 0)
    previous: int | None = None
    for i in order:
        if previous is not None:
            x += gap_px(lane.writes[i].ts_us - lane.writes[previous].ts_us)
        xs[i] = round(x, 1)
        previous = i
    return xs


def render(lane: Swimlane, colour_of: dict[str, int]) -> str:
    """The ``<svg class="swimlane">`` of one finding."""
    writes = lane.writes
    xs = _x_positions(lane)
    lanes = lane.lanes or ["?"]
    lane_index = {w: i for i, w in enumerate(lanes)}
    width = round((max(xs) if xs else LEFT) + RIGHT + (24 if len(writes) in lane.hidden else 0))
    height = TOP + LANE_H * len(lanes) + AXIS_H
    mid = {w: TOP + LANE_H * i + LANE_H / 2 for w, i in lane_index.items()}
    axis_y = TOP + LANE_H * len(lanes) + 10
    f = lane.finding
    out = [
        f"<svg class=\"swimlane\" xmlns=\"http://www.w3.org/2000/svg\" width={_a(width)} "
        f"height={_a(height)} viewBox={_a(f'0 0 {width} {height}')} role=\"img\" "
        # Shrink to fit the column, but never below legibility: past that, scroll.
        f"style={_a(f'min-width:{round(width * MIN_SCALE)}px')} "
        f"aria-label={_a(f'{f.detector} on {f.entity} {f.field}: timeline of writes')}>"
    ]
    # Lanes: a band and a name per writer.
    for w, i in lane_index.items():
        top = TOP + LANE_H * i
        colour = colour_of.get(w, 0) % PALETTE_SIZE
        out.append(
            f"<g class=\"lane\"><rect class=\"band{' odd' if i % 2 else ''}\" x=\"0\" "
            f"y={_a(top)} width={_a(width)} height={_a(LANE_H)}/>"
            f"<rect class=\"key c{colour}\" x=\"0\" y={_a(top)} width=\"4\" height={_a(LANE_H)}/>"
            f"<text class=\"lane-name\" x=\"12\" y={_a(mid[w] + 4)}>"
            f"<title>{escape(w)}</title>{escape(ellipsis(w, 17))}</text></g>"
        )
    # Guides: a vertical line through each witness, so their order in time is plain.
    for i, w in enumerate(writes):
        if lane.witness_number(w.event_id):
            out.append(
                f"<line class=\"guide\" x1={_a(xs[i])} x2={_a(xs[i])} y1={_a(TOP)} "
                f"y2={_a(axis_y)}/>"
            )
    # What each witness had seen: a bar from the write that made the version it read.
    for i, w in enumerate(writes):
        if not lane.witness_number(w.event_id) or w.base_version is None:
            continue
        source = next(
            (j for j in range(i - 1, -1, -1) if writes[j].version == w.base_version), None
        )
        start = xs[source] if source is not None else LEFT + 6
        if start >= xs[i]:
            continue
        y = mid[w.writer]
        colour = colour_of.get(w.writer, 0) % PALETTE_SIZE
        if source is None:
            inset = 5
        elif writes[source].writer != w.writer:
            inset = 5  # the mark it starts at sits in another lane
        else:
            inset = 32 if lane.witness_number(writes[source].event_id) else 9
        seen = (
            f"{w.writer} had read version {w.base_version}"
            + (f" (made at {iso(writes[source].ts_us)})" if source is not None
               else " (made before this window)")
            + f" and wrote version {w.version if w.version is not None else '?'} at "
            f"{iso(w.ts_us)}: writes in between went unseen"
        )
        out.append(
            f"<g class=\"read-span\"><title>{escape(seen)}</title>"
            f"<rect class=\"span c{colour}{'' if source is not None else ' open'}\" "
            f"x={_a(start)} y={_a(y - 6)} width={_a(round(xs[i] - start, 1))} height=\"12\" "
            f"rx=\"3\"/><line class=\"span-start c{colour}\" x1={_a(start)} x2={_a(start)} "
            f"y1={_a(y - 9)} y2={_a(y + 9)}/>"
            # Inside the bar, clear of the value labels above and below the lane's centre,
            # and of the mark (and its W badge) the bar starts at.
            + (f"<text class=\"span-label\" x={_a(start + inset)} y={_a(y + 3.5)}>"
               f"saw v{escape(str(w.base_version))}</text>"
               if xs[i] - start > inset + 14 + 6 * len(f"saw v{w.base_version}") else "")
            + "</g>"
        )
    # The writes.
    seen_in_lane: dict[str, int] = {}
    for i, w in enumerate(writes):
        n = lane.witness_number(w.event_id)
        k = seen_in_lane.get(w.writer, 0)
        seen_in_lane[w.writer] = k + 1
        y = mid.get(w.writer, TOP + LANE_H / 2)
        above = k % 2 == 0
        classes = ["write"]
        if n:
            classes.append("witness")
        if w.event_id in lane.overwritten:
            classes.append("overwritten")
        colour = colour_of.get(w.writer, 0) % PALETTE_SIZE
        value_cls = "val struck" if w.event_id in lane.overwritten else "val"
        version = f"v{w.version} " if w.version is not None else ""
        out.append(
            f"<g class={_a(' '.join(classes))} data-event-id={_a(w.event_id)}"
            + (f" data-witness={_a(n)}" if n else "")
            + f"><title>{escape(tooltip(w, lane))}</title>"
            f"<circle class=\"mark c{colour}\" cx={_a(xs[i])} cy={_a(y)} r={_a(8 if n else 5)}/>"
            f"<text class=\"label\" x={_a(xs[i])} y={_a(y - 13 if above else y + 22)}>"
            f"<tspan class=\"ver\">{escape(version)}</tspan>"
            f"<tspan class={_a(value_cls)}>{escape(label(w.new, LABEL_CHARS))}</tspan></text>"
            + (f"<text class=\"badge\" x={_a(xs[i] + 11)} y={_a(y + 4)}>W{n}</text>" if n else "")
            + "</g>"
        )
    # The time axis: the first write's clock time, then how long each gap really was.
    order = sorted(range(len(writes)), key=lambda i: (writes[i].ts_us, i))
    out.append(
        f"<g class=\"axis\"><line x1={_a(LEFT)} x2={_a(width - 8)} y1={_a(axis_y)} "
        f"y2={_a(axis_y)}/>"
    )
    previous = None
    for i in order:
        text = clock(writes[i].ts_us) if previous is None else duration(
            writes[i].ts_us - writes[previous].ts_us
        )
        out.append(
            f"<line x1={_a(xs[i])} x2={_a(xs[i])} y1={_a(axis_y - 4)} y2={_a(axis_y + 4)}/>"
            f"<text x={_a(xs[i])} y={_a(axis_y + 17)}>{escape(text)}</text>"
        )
        previous = i
    out.append("</g>")
    # Writes to this field left out of the picture, so nobody mistakes it for all there is.
    for n, count in sorted(lane.hidden.items()):
        if n == 0:
            x = LEFT + 14
        elif n >= len(writes):
            x = max(xs) + 28 if xs else LEFT + 14
        else:
            x = (xs[n - 1] + xs[n]) / 2
        out.append(
            f"<g class=\"hidden-writes\"><title>{count} other write"
            f"{'s' if count != 1 else ''} to this field not shown</title>"
            f"<text x={_a(x)} y={_a(axis_y - 6)}>⋯{count}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)

