"""A PEFT LoRA adapter as a llama.cpp GGUF adapter, and the checks before one is served.

:func:`export_gguf` writes what llama.cpp's own ``convert_lora_to_gguf.py``
writes, with the ``gguf`` package and no torch:

* ``general.architecture`` of the base, ``general.type = adapter``,
  ``adapter.type = lora``, ``adapter.lora.alpha`` (llama.cpp scales by
  ``alpha / rank``, as PEFT does);
* for every adapted module its two tensors, named after the base GGUF's
  (``blk.N.attn_q.weight.lora_a`` / ``.lora_b`` …), float32;
* the rows of ``lora_b`` of q and k permuted as llama.cpp's HF → GGUF
  conversion permutes the rows of q and k (``LlamaModel.permute``: each head's
  rotary halves interleaved), so ``B·A`` lands on the rows it adapts. Only
  ``lora_b`` carries output rows, so only it is permuted.

The written file is checked against a base GGUF with the server's own check
(:func:`swarmlearn.serving.check_lora`: the architecture, every tensor's name
and shape): an adapter trained on another base is refused at export, not by a
live server. :func:`check_adapter` runs that check and reads the adapter's
rank and alpha.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearn._extras import require
from swarmlearn.errors import ArtifactError, ConfigError

__all__ = ["AdapterInfo", "BaseInfo", "base_info", "check_adapter", "export_gguf",
           "gguf_name", "permute_rows"]

FORMAT_VERSION = 1

_MODULES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PEFT_NAME = re.compile(r"^(?:base_model\.model\.)?model\.layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])"
                        r"(?:\.\w+)?\.weight$")


def gguf_name(peft_name: str) -> tuple[str, str]:
    """(``blk.N.attn_q.weight``, ``A``|``B``) for a PEFT tensor name; ArtifactError if the
    module is not one llama.cpp's ``llama`` architecture adapts."""
    m = _PEFT_NAME.match(peft_name)
    if m is None or m.group(2) not in _MODULES:
        raise ArtifactError(f"adapter tensor {peft_name!r} is not a LoRA weight of a Llama "
                            f"attention or MLP projection")
    return f"blk.{m.group(1)}.{_MODULES[m.group(2)]}.weight", m.group(3)


def permute_rows(b: Any, n_head: int) -> Any:
    """llama.cpp's q/k row permutation applied to ``b`` (rows = output features)."""
    rows = b.shape[0]
    if rows % (2 * n_head):
        raise ArtifactError(f"cannot permute {rows} rows over {n_head} heads")
    return (b.reshape(n_head, 2, rows // n_head // 2, *b.shape[1:])
            .swapaxes(1, 2).reshape(b.shape))


@dataclass(frozen=True, slots=True)
class BaseInfo:
    """What the export needs of the base model: its architecture and head counts."""

    architecture: str
    n_head: int
    n_head_kv: int


def _reader(path: Path, what: str) -> Any:
    gguf = require("gguf", "lora")
    try:
        return gguf.GGUFReader(str(path), "r")
    except FileNotFoundError as exc:
        raise ArtifactError(f"{what}: no such file {str(path)!r}") from exc
    except Exception as exc:  # the gguf reader raises anything on a bad file
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ArtifactError(f"{what}: {path} is not a readable GGUF file (truncated or "
                            f"corrupt: {reason})") from exc


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    return f.contents() if f is not None else None


def base_info(base: Path | str) -> BaseInfo:
    """The architecture, head counts and tensor shapes of a base GGUF, or of an HF
    directory's ``config.json`` (no shapes then)."""
    p = Path(base)
    if p.is_dir():
        try:
            cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"base: {p} has no readable config.json ({exc})") from exc
        if cfg.get("model_type") != "llama":
            raise ArtifactError(f"base: model_type {cfg.get('model_type')!r} is not llama")
        n_head = int(cfg["num_attention_heads"])
        return BaseInfo("llama", n_head, int(cfg.get("num_key_value_heads", n_head)))
    r = _reader(p, "base")
    arch = str(_field(r, "general.architecture") or "")
    n_head = _field(r, f"{arch}.attention.head_count")
    if not arch or n_head is None:
        raise ArtifactError(f"base: {p} is not a model GGUF (no architecture / head count)")
    n_kv = _field(r, f"{arch}.attention.head_count_kv")
    return BaseInfo(arch, int(n_head), int(n_kv if n_kv is not None else n_head))


def _adapter_config(folder: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{folder}: no readable adapter_config.json ({exc})") from exc
    if not isinstance(cfg, dict) or "r" not in cfg or "lora_alpha" not in cfg:
        raise ArtifactError(f"{folder}/adapter_config.json: not a PEFT LoRA config")
    for flag in ("use_rslora", "use_dora"):
        if cfg.get(flag):
            raise ArtifactError(f"{folder}: {flag} adapters cannot be served by llama.cpp as is")
    return cfg


def export_gguf(adapter_dir: Path | str, base: Path | str, out: Path | str, *,
                permute: bool = True) -> Path:
    """Write the PEFT adapter in ``adapter_dir`` as a GGUF adapter for ``base`` to ``out``.

    ``permute=False`` skips the q/k permutation: only for showing that the
    equivalence test catches it."""
    gguf = require("gguf", "lora")
    st_numpy = require("safetensors.numpy", "lora")
    import numpy as np

    folder, dest = Path(adapter_dir), Path(out)
    cfg = _adapter_config(folder)
    try:
        tensors = st_numpy.load_file(str(folder / "adapter_model.safetensors"))
    except Exception as exc:  # safetensors raises its own errors on a bad file
        raise ArtifactError(f"{folder}/adapter_model.safetensors: cannot read ({exc})") from exc
    info = base_info(base)
    pairs: dict[str, dict[str, Any]] = {}
    for name, value in tensors.items():
        target, side = gguf_name(name)
        pairs.setdefault(target, {})[side] = np.asarray(value, dtype=np.float32)
    if not pairs:
        raise ArtifactError(f"{folder}: the adapter has no LoRA tensors")
    writer = gguf.GGUFWriter(str(dest.with_name(dest.name + ".tmp")), info.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(cfg["lora_alpha"]))
    for target in sorted(pairs, key=_order):
        ab = pairs[target]
        if set(ab) != {"A", "B"}:
            raise ArtifactError(f"{folder}: {target} has lora_{''.join(ab)} only")
        a, b = ab["A"], ab["B"]
        if permute and ".attn_q." in target:
            b = permute_rows(b, info.n_head)
        elif permute and ".attn_k." in target:
            b = permute_rows(b, info.n_head_kv)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ArtifactError(f"{folder}: {target}: lora_A {a.shape} and lora_B {b.shape} "
                                f"do not pair")
        writer.add_tensor(f"{target}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp = dest.with_name(dest.name + ".tmp")
    if not Path(base).is_dir():  # the server's own check, against the base GGUF
        from swarmlearn.serving import check_lora

        try:
            check_lora(tmp, base=Path(base).resolve(), field="adapter")
        except ConfigError as exc:
            tmp.unlink(missing_ok=True)
            raise ArtifactError(f"{folder} does not fit the base {base}: {exc}") from exc
    tmp.replace(dest)
    return dest


def _order(name: str) -> tuple[int, str]:
    parts = name.split(".")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1, name)


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    path: Path
    architecture: str
    alpha: float
    rank: int
    tensors: int


def check_adapter(adapter: Path | str, base: Path | str) -> AdapterInfo:
    """Check a GGUF adapter against a base GGUF (:func:`swarmlearn.serving.check_lora`:
    ConfigError in one line) and read its rank and alpha."""
    from swarmlearn.serving import check_lora

    p = check_lora(adapter, base=Path(base).resolve(), field="adapter")
    r = _reader(p, "adapter")
    alpha = _field(r, "adapter.lora.alpha")
    ranks = {int(t.shape[1]) for t in r.tensors if t.name.endswith(".lora_a")}
    return AdapterInfo(p, str(_field(r, "general.architecture")),
                       float(alpha) if alpha is not None else 0.0, max(ranks, default=0),
                       len(r.tensors))
