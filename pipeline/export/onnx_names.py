"""ONNX graphs from tf2onnx with names that depend on the graph alone.

tf2onnx names what it makes `<prefix>__<n>` from a process-wide counter, and of equal
constants it keeps one under one of their names; both depend on the order Python iterates sets
in, which differs from process to process. The same network would convert to different bytes in
every run, and DVC would see a new model each time. `stable_names` numbers the made names again
in the order the graph uses them and names each constant after the node that first reads it.
"""

from __future__ import annotations

import re

# tf2onnx's `utils.make_name` (a prefix, two underscores, the counter), maybe with an output index.
MADE_NAME = re.compile(r"^(.*?)__\d+(:\d+)?$")


def stable_names(proto, name: str) -> None:
    """Rename in place: made names to `<prefix>__<k>` (k in order of first use), constants to
    `<first reader>.<its input's name>`, the graph to `name`. Graph inputs and outputs keep
    theirs (a constant that is also an input is a default the caller may replace)."""
    graph = proto.graph
    kept = {value.name for value in (*graph.input, *graph.output)}
    renamed: dict[str, str] = {}

    def numbered(old: str) -> str:
        made = MADE_NAME.match(old)
        if not made or old in kept:
            return old
        index = made.group(2) or ""
        return renamed.setdefault(old, f"{made.group(1)}__{len(renamed)}{index}")

    for node in graph.node:
        for value in (*node.input, *node.output, node.name):
            numbered(value)
    constants = {tensor.name for tensor in graph.initializer} - kept
    taken = set()
    for node in graph.node:
        reader = renamed.get(node.name, node.name)
        for slot, value in enumerate(node.input):
            if value in constants and value not in taken:
                taken.add(value)
                renamed[value] = f"{reader}.{_input_name(node, slot)}"

    for node in graph.node:
        node.input[:] = [renamed.get(value, value) for value in node.input]
        node.output[:] = [renamed.get(value, value) for value in node.output]
        node.name = renamed.get(node.name, node.name)
    for tensor in (*graph.initializer, *graph.value_info):
        tensor.name = renamed.get(tensor.name, tensor.name)
    in_order = sorted(graph.initializer, key=lambda tensor: tensor.name)
    del graph.initializer[:]
    graph.initializer.extend(in_order)
    graph.name = name
    graph.doc_string = ""


def _input_name(node, slot: int) -> str:
    """The operator's name for input `slot` (`W`, `B` of a `Conv`), or the slot's number."""
    import onnx

    try:
        inputs = onnx.defs.get_schema(node.op_type, node.domain).inputs
    except onnx.defs.SchemaError:
        return str(slot)
    return inputs[slot].name if slot < len(inputs) else str(slot)
