// A small workflow editor in the shape of a React Flow app whose blocks three writers
// race over: engine updates streamed over SSE (`workflow`), a manifest poller
// (`polling_sync`), and the user's clicks (`user`). Every setNodes goes through the
// writer's audited setter. The "Add index" handler has the stale-list bug on purpose.
import { createRoot } from "react-dom/client";
import { useEffect, useMemo } from "react";
import { Handle, Position, ReactFlow, ReactFlowProvider, useNodesState, useReactFlow } from "@xyflow/react";
import { AuditedNodes, Auditor } from "conflict-audit";

function Block({ id, data }) {
  const { onAddIndex, onRename } = data.actions;
  return (
    <div className="block" data-testid={id}>
      <Handle type="target" position={Position.Left} />
      <strong className="label">{data.label}</strong>
      <p className="content">{data.content}</p>
      <ul>
        {data.indexingList.map((item) => (
          <li key={item.index_name} data-index={item.index_name}>{`${item.index_name}: ${item.status}`}</li>
        ))}
      </ul>
      <button data-testid={`${id}-add-index`} onClick={() => onAddIndex(id)}>Add index</button>
      <button data-testid={`${id}-rename`} onClick={() => onRename(id)}>Rename</button>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const nodeTypes = { block: Block };

/** Update one node's data, the way React Flow apps write it. */
const withData = (id, change) => (nodes) =>
  nodes.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...change(n.data) } } : n));

function Editor({ audit, initial }) {
  const [nodes, setNodes, onNodesChange] = useNodesState(initial);
  const { getNode } = useReactFlow();
  const writers = useMemo(() => {
    // UI-only fields are no one's state: React Flow's own and the callbacks in data.
    const flow = new AuditedNodes(audit, {
      entityType: "block",
      exclude: ["position", "measured", "selected", "dragging", "width", "height", "data.actions"],
    });
    return {
      engine: flow.setter(setNodes, { writer: "workflow", actor: "engine" }),
      poller: flow.setter(setNodes, { writer: "polling_sync" }),
      user: flow.setter(setNodes, { writer: "user", actor: "u-1" }),
    };
  }, [audit, setNodes]);

  // Engine updates: each SSE message replaces a block's content.
  useEffect(() => {
    const stream = new EventSource("/engine");
    stream.onmessage = (message) => {
      const update = JSON.parse(message.data);
      writers.engine(withData(update.block_id, () => ({ content: update.content })), { sourceTs: update.updated_at });
    };
    return () => stream.close();
  }, [writers]);

  // Manifest sync: poll until the indexes it follows are done, write their status, stop.
  useEffect(() => {
    let stopped = false;
    const timer = setInterval(async () => {
      const manifest = await (await fetch("/manifest")).json();
      if (stopped) return;
      const done = Object.entries(manifest.indexes).every(([, status]) => status === "done");
      writers.poller(withData(manifest.block_id, (data) => ({
        indexingList: data.indexingList.map((item) => ({ ...item, status: manifest.indexes[item.index_name] ?? item.status })),
      })));
      if (done) {
        stopped = true;
        clearInterval(timer);
      }
    }, 50);
    return () => clearInterval(timer);
  }, [writers]);

  const actions = useMemo(() => ({
    // The bug: the list is read before the await and written back after it, so whatever
    // another writer did to it meanwhile is lost.
    async onAddIndex(id) {
      const read = getNode(id);
      const indexingList = read.data.indexingList;
      const answer = await (await fetch("/embed", { method: "POST" })).json();
      const newItem = { index_name: answer.collection_name, status: "processing" };
      writers.user(withData(id, () => ({ indexingList: [...indexingList, newItem] })), { read });
    },
    onRename(id) {
      writers.user(withData(id, (data) => ({ label: `${data.label} (renamed)` })));
    },
  }), [getNode, writers]);

  const shown = useMemo(() => nodes.map((n) => ({ ...n, data: { ...n.data, actions } })), [nodes, actions]);
  // React Flow's own changes (the sizes it measures, selection) go to setNodes unaudited:
  // they are no writer's state. Without them every write left the nodes unmeasured, hidden
  // until measured again (28 % of the time while the poller wrote every 50 ms).
  return <ReactFlow nodes={shown} onNodesChange={onNodesChange} nodeTypes={nodeTypes} fitView />;
}

async function main() {
  const config = await (await fetch("/config")).json();
  const audit = new Auditor({ endpoint: config.endpoint, token: config.token, service: "workflow-editor" });
  window.audit = audit; // for the test: flush() and stats()
  const initial = await (await fetch("/workspace")).json();
  createRoot(document.getElementById("root")).render(
    <ReactFlowProvider><Editor audit={audit} initial={initial} /></ReactFlowProvider>,
  );
}

main();
