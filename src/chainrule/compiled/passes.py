"""The passes over a program's lines, after ``program`` wrote one per step: aliases
dropped, dead lines dropped, single-use temporaries inlined, outputs made fresh, and the
lecture's names given. Each works on ``ast`` nodes, so that an inlined expression keeps
its meaning (``ast.unparse`` adds the parentheses precedence needs): the same NumPy calls
on the same operands, in the same order of evaluation for every value.
"""

from __future__ import annotations

import ast
import re

from chainrule.compiled.templates import ACTIVATIONS, LAYERS
from chainrule.ops.elementwise import Add, Sub

__all__ = ["Line", "drop_aliases", "fresh_outputs", "give_names", "inline", "live"]


class Line:
    """One statement of the program (an ``ast`` node): the names it ``writes``, whether it
    is a pure expression assigned to one name (which may be inlined or, if a bare name,
    dropped as an alias), and its ``role``: ("op", Function) for an op's result,
    ("grad", slot) for a gradient with respect to that slot's value, or None."""

    __slots__ = ("pure", "role", "stmt", "writes")

    def __init__(
        self,
        text: str,
        writes: list[str],
        pure: bool = False,
        role: tuple | None = None,
    ) -> None:
        self.stmt: ast.stmt = ast.parse(text).body[0]
        self.writes = writes
        self.pure = pure
        self.role = role


def fresh_outputs(line: Line, held: set[str]) -> None:
    """Copy each output that is an input, a constant or another output: every result of a
    call is an array of its own, which no later call writes."""
    assert isinstance(line.stmt, ast.Return) and isinstance(line.stmt.value, ast.Tuple)
    seen: set[str] = set()
    items = []
    for item in line.stmt.value.elts:
        if isinstance(item, ast.Name) and (item.id in held or item.id in seen):
            item = ast.parse(f"{item.id}.copy()", mode="eval").body
        elif isinstance(item, ast.Name):
            seen.add(item.id)
        items.append(item)
    line.stmt.value.elts = items


class _Substitute(ast.NodeTransformer):
    """Names read replaced: by other names (``renames``) or by expressions (``exprs``,
    each used once and then forgotten)."""

    def __init__(self, renames: dict[str, str], exprs: dict[str, ast.expr]) -> None:
        self.renames = renames
        self.exprs = exprs

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.exprs:
            return self.exprs.pop(node.id)
        if node.id in self.renames:
            return ast.copy_location(ast.Name(self.renames[node.id], node.ctx), node)
        return node


def _reads(stmt: ast.stmt) -> list[str]:
    return [
        n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    ]


def _value(line: Line) -> ast.expr:
    assert isinstance(line.stmt, ast.Assign)
    return line.stmt.value


def drop_aliases(lines: list[Line]) -> list[Line]:
    """``a = b`` lines removed, later reads of a reading b (no array is copied by them)."""
    renames: dict[str, str] = {}
    out = []
    for line in lines:
        line.stmt = _Substitute(renames, {}).visit(line.stmt)
        if line.pure and isinstance(_value(line), ast.Name):
            renames[line.writes[0]] = _value(line).id  # type: ignore[attr-defined]
            continue
        out.append(line)
    return out


def live(lines: list[Line]) -> list[Line]:
    """The lines whose results something reads, back from the return; and the releases
    (``ctx._saved = ()``) of the Contexts that those lines still use."""
    needed: set[str] = set()
    kept = []
    for line in reversed(lines):
        if line.role == ("release",):
            kept.append(line)
        elif isinstance(line.stmt, ast.Return) or any(name in needed for name in line.writes):
            kept.append(line)
            needed.update(_reads(line.stmt))
            needed.update(line.writes)  # a statement that updates a name reads it too
    return [
        line for line in kept[::-1] if line.role != ("release",) or _reads(line.stmt)[0] in needed
    ]


def inline(lines: list[Line]) -> list[Line]:
    """Write each temporary that exactly one later line reads, once, into that line."""
    reads: dict[str, int] = {}
    writes: dict[str, int] = {}
    for line in lines:
        for name in line.writes:
            writes[name] = writes.get(name, 0) + 1
        # what the function returns keeps its name (the outputs read as ∂L/∂W = ...)
        count = 2 if isinstance(line.stmt, ast.Return) else 1
        for name in _reads(line.stmt):
            reads[name] = reads.get(name, 0) + count
    out: list[Line] = []
    pending: dict[str, Line] = {}  # name -> its line, waiting for its one reader
    for line in lines:
        if pending:
            read = set(_reads(line.stmt))
            # x @ W read by an activation stays a line: f[l], then a[l] = g(f[l])
            for name in [n for n in pending if n in read and _keeps_name(pending[n], line)]:
                out.append(pending.pop(name))
            exprs = {name: _value(pending.pop(name)) for name in list(pending) if name in read}
            line.stmt = _Substitute({}, exprs).visit(line.stmt)
        if line.pure and len(line.writes) == 1 and not _is_layer(line):
            target = line.writes[0]
            if reads.get(target) == 1 and writes[target] == 1:
                pending[target] = line
                continue
        out.append(line)
    assert not pending, list(pending)
    return out


def _keeps_name(defined: Line, reader: Line) -> bool:
    """A matrix product read by an activation: the lecture's f[l] and a[l] = g(f[l])."""
    return (
        defined.role is not None
        and defined.role[:2] == ("op", LAYERS[1])
        and reader.role is not None
        and reader.role[0] == "op"
        and reader.role[1] in ACTIVATIONS
    )


def give_names(lines: list[Line], globals_: set[str], inputs: list[str]) -> list[Line]:
    """Final names, the lecture's where they apply: f1 = x @ W1 + b1 (an affine map, the
    layer's pre-activation f[l]), a1 = np.tanh(f1) (its activation a[l]), and d1 for
    δ[1] = ∂L/∂f1; dW1 for ∂L/∂W1; v1, v2, ... for other values."""
    taken = set(globals_) | set(inputs)
    final: dict[str, str] = {}
    counters: dict[str, int] = {}
    layer = 0

    def fresh(base: str, numbered: bool = False) -> str:
        number = counters.get(base, 0)
        while True:
            number += 1
            name = f"{base}{number}" if numbered else base if number == 1 else f"{base}_{number}"
            if name not in taken:
                counters[base] = number
                taken.add(name)
                return name

    for line in lines:
        role = line.role
        for provisional in line.writes:
            if provisional in final or not provisional.startswith("_"):
                continue
            if role is None:
                final[provisional] = fresh("t", numbered=True)
            elif role[0] == "op":
                value = line.stmt.value if isinstance(line.stmt, ast.Assign) else None
                if role[1] in LAYERS or (role[1] in (Add, Sub) and _is_affine(value)):
                    layer += 1
                    final[provisional] = fresh(f"f{layer}")
                elif role[1] in ACTIVATIONS and _activation_of(value, final) is not None:
                    final[provisional] = fresh(f"a{_activation_of(value, final)}")
                else:
                    final[provisional] = fresh("v", numbered=True)
            elif role[0] == "grad":
                of = final.get(role[1], role[1])
                layer_of = re.fullmatch(r"f(\d+)", of)
                if layer_of:
                    final[provisional] = fresh(f"d{layer_of.group(1)}")
                elif of and not of.startswith("_"):
                    final[provisional] = fresh(f"d{of}")
                else:
                    final[provisional] = fresh("g", numbered=True)
            else:
                final[provisional] = fresh(role[0])
    substitute = _Substitute(final, {})
    for line in lines:
        line.stmt = substitute.visit(line.stmt)
    return lines


def _is_layer(line: Line) -> bool:
    """A layer's pre-activation f[l] = a[l-1] W[l] + b[l]: a line of its own."""
    role = line.role
    if role is None or role[0] != "op":
        return False
    value = line.stmt.value if isinstance(line.stmt, ast.Assign) else None
    return role[1] is LAYERS[0] or (role[1] in (Add, Sub) and _is_affine(value))


def _is_affine(value: ast.expr | None) -> bool:
    """x @ W + b: a sum whose left operand is a matrix product."""
    return (
        isinstance(value, ast.BinOp)
        and isinstance(value.op, (ast.Add, ast.Sub))
        and isinstance(value.left, ast.BinOp)
        and isinstance(value.left.op, ast.MatMult)
    )


def _activation_of(value: ast.expr | None, final: dict[str, str]) -> str | None:
    """The layer number l when ``value`` is g(f[l]) (its first argument)."""
    if isinstance(value, ast.Call) and value.args and isinstance(value.args[0], ast.Name):
        match = re.fullmatch(r"f(\d+)", final.get(value.args[0].id, value.args[0].id))
        return match.group(1) if match else None
    return None
