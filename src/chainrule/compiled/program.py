"""From a trace to a program: one line of NumPy per step, in the order the trace ran them.

Each step becomes a ``Line``: an op through its template (``compiled.templates``: ``x @ W
+ b``, ``np.tanh(f1)``, ``dv * (1 - a1 * a1)``) or, for any other Function, the generic
call of its static ``forward``/``backward`` with a ``Context`` made once per op and reused
by every call; the engine's gradient fitting, sums and copies as the NumPy calls they
made, with the reduced axes worked out at trace time. Then the passes of
``compiled.passes``: aliases and dead lines dropped, a temporary read exactly once written
into the line that reads it (the lecture's δ[l] = g′(f[l]) ∘ (W[l+1] δ[l+1]) becomes one
line), the lecture's names given. Last, ``compiled.buffers`` writes each line whose value
is a large temporary into a buffer of the program's workspace through ``out=``. Nothing
of this changes a number: the same NumPy calls run on the same arrays, in the same order
of evaluation for every value.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np

from chainrule.checks import gradient_tuple
from chainrule.compiled.buffers import Spec, own, plan
from chainrule.compiled.passes import (
    Line,
    drop_aliases,
    fresh_outputs,
    give_names,
    inline,
    live,
)
from chainrule.compiled.templates import HELPERS, TEMPLATES, View
from chainrule.compiled.trace import Backward, Call, Derived, Op, Ref, Saved, Tracer
from chainrule.function import _output_array
from chainrule.graph import Context
from chainrule.ops.reduction import Sum
from chainrule.runners import sum_to_shape
from chainrule.tensor import Tensor
from chainrule.tree import TreeDef

__all__ = ["Line", "build"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names_in(text: str) -> set[str]:
    return set(_IDENTIFIER.findall(text))


def _dtype_source(dtype: Any) -> str:
    return f"np.{np.dtype(dtype).name}"


def _grads(returned: Any, ctx: Context) -> tuple[Any, ...]:
    """What a backward returned, one entry per input: ``checks.gradient_tuple``, without
    its calls on the common shapes (a tuple of the right length, one bare array)."""
    if type(returned) is tuple and len(returned) == len(ctx.parents):
        return returned
    if type(returned) is not tuple and type(returned) is not list and len(ctx.parents) == 1:
        return (returned,)
    return gradient_tuple(ctx, returned)


class _Builder:
    """Lines from steps, with provisional names (``_s12`` for slot 12); ``build`` then
    drops, inlines and names them."""

    def __init__(self, tracer: Tracer, input_names: dict[int, str]) -> None:
        self.tracer = tracer
        self.names: dict[int, str] = dict(input_names)
        self.used: set[str] = set(input_names.values()) | {"np", *HELPERS}
        self.namespace: dict[str, Any] = {
            "np": np, "_grads": _grads, "_output_array": _output_array, **HELPERS,
        }  # fmt: skip
        self.lines: list[Line] = []
        self.gradient_of: dict[int, str] = {}  # slot -> the name of the value it is ∂L/∂ of
        self.contexts: dict[int, str] = {}  # op index -> the name of its reused Context
        self.templated: set[int] = set()  # op indices whose template runs them
        self.ones: set[str] = set()  # names of arrays that are all ones (seeds, spread)
        self.tuples = 0

    # ------------------------------------------------------------------ names
    def unique(self, base: str) -> str:
        name, number = base, 1
        while name in self.used:
            number += 1
            name = f"{base}_{number}"
        self.used.add(name)
        return name

    def global_name(self, base: str, value: Any) -> str:
        for name, held in self.namespace.items():
            if held is value and name.startswith(base):
                return name
        name = self.unique(base)
        self.namespace[name] = value
        return name

    def source(self, ref: Ref) -> str:
        """The Python expression of a reference."""
        kind = ref[0]
        if kind == "s":
            return self.names[ref[1]]
        if kind == "c":
            name = self.global_name(f"K{ref[1]}", self.tracer.constants[ref[1]])
            if ref[1] in self.tracer.ones:
                self.ones.add(name)
            return name
        if kind == "l":
            value = ref[1]
            if isinstance(value, float) and not np.isfinite(value):
                return f"float({str(value)!r})"
            return repr(value)
        if kind == "t":
            items = [self.source(r) for r in ref[2]]
            if ref[1] is list:
                return "[" + ", ".join(items) + "]"
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return self.global_name("obj", ref[1])

    def value(self, ref: Ref) -> Any:
        """The value a reference had in the trace."""
        kind = ref[0]
        if kind == "s":
            return self.tracer.values[ref[1]]
        if kind == "c":
            return self.tracer.constants[ref[1]]
        if kind == "t":
            return ref[1](self.value(r) for r in ref[2])
        return ref[1]

    def name_slot(self, slot: int) -> str:
        name = f"_s{slot}"
        self.names[slot] = name
        return name

    def assign(self, target: str, expr: str, role: tuple | None = None, pure: bool = True):
        self.lines.append(Line(f"{target} = {expr}", [target], pure, role))

    # ------------------------------------------------------------------ steps
    def view(self, step: Op, needs: tuple[bool, ...], grads: list[tuple[int, ...]]) -> View:
        return View(
            [self.source(r) for r in step.args],
            [self.value(r) for r in step.args],
            {k: self.value(r) for k, r in step.options.items()},
            self.tracer.values[step.out],
            needs,
            grads,
        )

    def op(self, index: int, step: Op, backwards: list[Backward], generic: bool) -> None:
        function = step.function
        role = ("op", function)
        template = None if generic else TEMPLATES.get(function)
        grad_shapes = [np.shape(self.value(b.grad)) for b in backwards]
        view = self.view(step, step.needs, grad_shapes)
        if template is not None and template.accepts(view):
            self.templated.add(index)
            out = self.name_slot(step.out)
            for text, writes in template.forward(view, out):
                if writes is None:
                    if view.out.ndim == 0 and not text.startswith(("np.array(", "np.asarray(")):
                        text = f"np.asarray({text})"  # a 0-d result is a scalar: apply's fix
                    self.assign(out, text, role)
                else:
                    self.lines.append(Line(text, writes))
            return
        ctx = self.contexts.get(index)
        if ctx is None:
            context = object.__new__(Context)
            context.function = function
            context.needs_input_grad = step.needs
            context.input_meta = step.meta
            context.parents = (None,) * len(step.args)
            ctx = self.global_name(f"ctx_{function.__name__}", context)
            self.contexts[index] = ctx
        cls = self.global_name(function.__name__, function)
        if any(b.needs != step.needs for b in backwards):  # a backward changes it: reset
            self.lines.append(Line(f"{ctx}.needs_input_grad = {step.needs!r}", [ctx]))
        args = [ctx] + [self.source(r) for r in step.args]
        args += [f"{k}={self.source(r)}" for k, r in step.options.items()]
        out = self.name_slot(step.out)
        self.lines.append(
            Line(f"{out} = {cls}.forward({', '.join(args)})", [out, ctx], False, role)
        )
        if step.scalar_out:  # a 0-d forward may return a NumPy scalar: apply makes it 0-d
            fix = f"if type({out}) is not np.ndarray:\n"
            fix += f"    {out} = _output_array({cls}, {ctx}, {out})"
            self.lines.append(Line(fix, [out]))

    def saved(self, step: Saved) -> None:
        """An array the op's forward kept on its Context, read back from it."""
        ctx = self.contexts[step.op]
        read = f"{ctx}._saved[{step.index}]" if step.name is None else f"{ctx}.{step.name}"
        self.assign(self.name_slot(step.out), read, ("kept",), pure=False)

    def call(self, step: Call) -> None:
        """A NumPy call outside the graph (``tensor.constant_op``)."""
        function = step.function
        name = getattr(function, "__name__", "")
        if getattr(np, name, None) is function:
            text = f"np.{name}"
        else:
            text = self.global_name(name if name.isidentifier() else "fn", function)
        args = [self.source(r) for r in step.args]
        args += [f"{k}={self.source(r)}" for k, r in step.options.items()]
        expr = f"{text}({', '.join(args)})"
        if self.tracer.values[step.out].ndim == 0:
            expr = f"np.asarray({expr})"
        self.assign(self.name_slot(step.out), expr, ("mask",))

    def backward(self, step: Backward, op: Op) -> None:
        grad = self.source(step.grad)
        if step.op in self.templated:
            template = TEMPLATES[op.function]
            view = self.view(op, step.needs, [np.shape(self.value(step.grad))])
            view.grad_is_ones = grad in self.ones
            exprs = template.backward(view, self.names[op.out], grad)
            if view.grad_is_ones and op.function is Sum and op.options["axes"] == ("l", None):
                self.ones.add(f"_s{step.outs[0]}")  # np.full of a one: all ones
            for slot, expr, ref in zip(step.outs, exprs, op.args):
                if slot is not None:
                    if expr is None:
                        raise AssertionError(f"{op.function.__name__}: template missed a gradient")
                    self.assign(self.gradient(slot, ref), expr, ("grad", self.gradient_of[slot]))
            return
        ctx = self.contexts[step.op]
        cls = self.global_name(op.function.__name__, op.function)
        if step.needs != op.needs:
            self.lines.append(Line(f"{ctx}.needs_input_grad = {step.needs!r}", [ctx]))
        self.tuples += 1
        grads = f"_g{self.tuples}"
        call = f"_grads({cls}.backward({ctx}, {grad}), {ctx})"
        self.lines.append(Line(f"{grads} = {call}", [grads], False, ("grads",)))
        for i, (slot, ref) in enumerate(zip(step.outs, op.args)):
            if slot is not None:
                name = self.gradient(slot, ref)
                self.assign(name, f"{grads}[{i}]", ("grad", self.gradient_of[slot]))

    def gradient(self, slot: int, ref: Ref | None) -> str:
        """The provisional name of a gradient, noting what it is the gradient of."""
        of = ""
        if ref is not None and ref[0] in "sc":  # a computed value or a closed-over array
            of = self.source(ref)
        self.gradient_of[slot] = of
        return self.name_slot(slot)

    def derived(self, step: Derived) -> None:
        sources = [self.source(r) for r in step.sources]
        first = step.sources[0]
        of = self.gradient_of.get(first[1], "") if first[0] == "s" else ""
        self.gradient_of[step.out] = of
        out = self.name_slot(step.out)
        role = ("grad", of)
        if step.kind == "add":
            expr = f"{sources[0]} + {sources[1]}"
            if self.tracer.values[step.out].ndim == 0:
                expr = f"np.asarray({expr})"
            self.assign(out, expr, role)
        elif step.kind == "copy":
            self.assign(out, f"np.array({sources[0]}, dtype={_dtype_source(step.dtype)})", role)
        else:
            self.assign(out, self.fit(sources[0], self.value(first), step), role)

    def fit(self, source: str, given: Any, step: Derived) -> str:
        """``runners.fit`` for this gradient's shapes, as one expression."""
        expr = source
        grad = given
        if type(grad) is not np.ndarray:
            grad = np.asarray(grad)
            expr = f"np.asarray({expr})"
        shape, batch = step.shape, step.batch
        if grad.shape[batch:] != shape or grad.ndim != batch + len(shape):
            target = grad.shape[:batch] + tuple(shape)
            lead = grad.ndim - len(target)
            axes = tuple(range(batch, batch + lead)) + tuple(
                batch + lead + i
                for i, n in enumerate(shape)
                if n == 1 and grad.shape[batch + lead + i] != 1
            )
            summed = grad
            if axes:
                if grad.dtype.kind == "f" and grad.dtype.itemsize < 8:
                    expr = (
                        f"np.asarray(np.sum({expr}, axis={axes!r}, dtype=np.float64), "
                        f"{_dtype_source(grad.dtype)})"
                    )
                else:
                    expr = f"np.asarray(np.sum({expr}, axis={axes!r}))"
                summed = np.sum(grad, axis=axes)
            if summed.shape != target:
                expr = f"{expr}.reshape({target!r})"
            grad = sum_to_shape(grad, shape, batch)
        if grad.dtype != step.dtype:
            expr = f"{expr}.astype({_dtype_source(step.dtype)})"
        return expr


def build(
    tracer: Tracer,
    inputs: list[int],
    input_names: list[str],
    outputs: list[Ref],
    out_def: TreeDef,
    tensors: list[bool],
    title: str,
) -> tuple[str, dict[str, Any], list[Spec]]:
    """The program's source, the namespace to run it in, and its workspace (the shape and
    dtype of each buffer ``_b[i]``, see ``compiled.buffers``): ``program(*arrays)`` returns
    f's output structure ``out_def``, a Tensor at each leaf where ``tensors`` says so."""
    builder = _Builder(tracer, dict(zip(inputs, input_names)))
    steps = tracer.steps
    backwards: dict[int, list[Backward]] = {}
    for step in steps:
        if isinstance(step, Backward):
            backwards.setdefault(step.op, []).append(step)
    read = _referenced(steps, outputs)
    generic = {s.op for s in steps if isinstance(s, Saved) and s.out in read}
    for index, step in enumerate(steps):
        if isinstance(step, Op):
            builder.op(index, step, backwards.get(index, []), index in generic)
        elif isinstance(step, Saved):
            if step.out in read:
                builder.saved(step)
        elif isinstance(step, Call):
            builder.call(step)
        elif isinstance(step, Backward):
            op = steps[step.op]
            assert isinstance(op, Op)
            builder.backward(step, op)
            if step is backwards[step.op][-1] and step.op in builder.contexts:
                # as the engine does after a node's backward: its saved arrays go, and
                # the next call's forward finds their memory free
                ctx = builder.contexts[step.op]
                builder.lines.append(Line(f"{ctx}._saved = ()", [], role=("release",)))
        else:
            builder.derived(step)
    results = [builder.source(ref) for ref in outputs]
    returned = "(" + ", ".join(results) + ("," if len(results) == 1 else "") + ")"
    lines = [*builder.lines, Line(f"return {returned}", [])]
    lines = drop_aliases(lines)
    fresh_outputs(lines[-1], set(input_names) | set(builder.namespace))
    lines = give_names(inline(live(lines)), builder.used, input_names)
    builder.namespace["_own"] = own
    specs = plan(lines, builder.namespace, input_names, [tracer.values[s] for s in inputs])
    builder.namespace["_T"] = Tensor._make
    _structure(lines[-1], out_def, tensors, builder)
    header = [f"# {title}"]
    if specs:
        size = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype, _ in specs)
        amount = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"
        header.append(f"# _b: {len(specs)} buffers ({amount}) that every call writes into")
    header.append(f"def program({', '.join(input_names)}):")
    body = []
    for line in lines:
        body += ["    " + text for text in ast.unparse(line.stmt).splitlines()]
    return "\n".join([*header, *body]) + "\n", builder.namespace, specs


def _structure(line: Line, out_def: TreeDef, tensors: list[bool], builder: _Builder) -> None:
    """The return statement rebuilt as f's output structure, Tensors where f had them."""
    assert isinstance(line.stmt, ast.Return) and isinstance(line.stmt.value, ast.Tuple)
    leaves = iter(
        f"_T({ast.unparse(item)}, None)" if tensor else ast.unparse(item)
        for item, tensor in zip(line.stmt.value.elts, tensors)
    )

    def text(treedef: TreeDef) -> str:
        kind = treedef.kind
        if kind is None:
            return next(leaves)
        if kind is type(None):
            return "None"
        children = [text(child) for child in treedef.children]
        if kind is dict:
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(treedef.keys, children)) + "}"
        if kind is list:
            return "[" + ", ".join(children) + "]"
        if kind is tuple:
            return "(" + ", ".join(children) + ("," if len(children) == 1 else "") + ")"
        return f"{builder.global_name(kind.__name__, kind)}({', '.join(children)})"

    line.stmt = ast.parse(f"return {text(out_def)}").body[0]


def _referenced(steps: list[Any], outputs: list[Ref]) -> set[int]:
    """The slots that some step or output refers to."""
    found: set[int] = set()

    def visit(ref: Ref) -> None:
        if ref[0] == "s":
            found.add(ref[1])
        elif ref[0] == "t":
            for item in ref[2]:
                visit(item)

    for step in steps:
        if isinstance(step, (Op, Call)):
            for ref in [*step.args, *step.options.values()]:
                visit(ref)
        elif isinstance(step, Backward):
            visit(step.grad)
        elif isinstance(step, Derived):
            for ref in step.sources:
                visit(ref)
    for ref in outputs:
        visit(ref)
    return found
