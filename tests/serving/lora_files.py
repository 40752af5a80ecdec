"""LoRA adapter files for serving tests: any tensors and metadata, or a copy with a new alpha."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_adapter(path: Path, tensors: Mapping[str, Any], *, arch: str = "llama",
                  kind: tuple[str, str] = ("adapter", "lora"), alpha: float = 8.0) -> Path:
    """A LoRA GGUF of ``tensors``: numpy arrays, or shapes (numpy order) to fill with zeros."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string("general.type", kind[0])
    writer.add_string("adapter.type", kind[1])
    writer.add_float32("adapter.lora.alpha", alpha)
    for name, value in tensors.items():
        array = np.zeros(value, dtype=np.float32) if isinstance(value, tuple) else value
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def with_alpha(source: Path, path: Path, alpha: float) -> Path:
    """A copy of the adapter ``source`` with another ``adapter.lora.alpha`` (another effect)."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(source))
    tensors = {t.name: np.array(t.data).reshape([int(n) for n in reversed(t.shape)])
               for t in reader.tensors}
    return write_adapter(path, tensors, alpha=alpha)
