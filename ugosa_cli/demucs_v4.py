"""Reading demucs v4 model files without running code from them.

A demucs v4 file is a ``torch.save`` zip archive of a dict: ``klass`` (a pickled reference to the class
``demucs.htdemucs.HTDemucs``), ``args`` (empty), ``kwargs`` (the constructor's arguments, ``segment`` a
``fractions.Fraction``), ``state`` (the state dict, fp16), ``training_args`` and sometimes ``metrics``.
Plain ``torch.load(weights_only=True)`` refuses it because of the class reference and the Fraction.

What is accepted
    * A zip archive whose pickle names, besides torch's tensor machinery, only ``demucs.htdemucs.HTDemucs``
      (replaced by the inert :class:`HTDemucsClassReference`: it carries the name and constructs nothing;
      the ``demucs`` package is never imported), ``fractions.Fraction``, and numpy scalar/dtype/array
      globals (replaced by stand-ins that decode plain numbers and drop the rest: nothing of numpy runs),
      and ``_codecs.encode`` (how pickle protocol 2 stores the bytes of those numpy values).
    * ``kwargs`` of a released configuration (htdemucs, the four htdemucs_ft models, htdemucs_6s; see
      :func:`ugosa_cli.models.htdemucs.config_from_kwargs`) and a state dict of tensors.

What is refused, each with one line naming the file (``InputError``)
    * any other global in the pickle (``os.system`` and the like): checked before anything is loaded, and
      the load itself runs under ``weights_only=True``, so nothing from the file is ever called;
    * another demucs model class (``demucs.hdemucs.HDemucs``, ``demucs.demucs.Demucs``, ...);
    * quantized files (``state['__quantized']``, DiffQ);
    * an unknown or unsupported constructor argument, naming it and its value;
    * corrupt or truncated files.

Loading uses ``torch.serialization.safe_globals`` with ``(object, "module.name")`` entries where torch
supports them (torch >= 2.6; checked at run time); on older torch (>= 2.1) a ``pickle.Unpickler`` whose
``find_class`` resolves only the same short allow-list.

API: :func:`is_demucs_package` (a quick look that loads nothing) and :func:`read_demucs_package`, which
returns a :class:`DemucsPackage`; ``DemucsPackage.build_model()`` gives the :class:`HTDemucs` in eval mode.
"""

from __future__ import annotations

import codecs
import collections
import functools
import io
import pickle
import pickletools
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ugosa_cli.errors import InputError
from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsConfig, build_from_config, config_from_kwargs

HTDEMUCS_CLASS = "demucs.htdemucs.HTDemucs"
SUPPORTED_MODELS = "ugosa supports demucs v4 HTDemucs models (htdemucs, htdemucs_ft, htdemucs_6s)"
NUMPY_SCALAR_NAMES = ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar")


class HTDemucsClassReference:
    """Inert stand-in for the pickled class reference ``demucs.htdemucs.HTDemucs``: a name, nothing else."""

    name = HTDEMUCS_CLASS

    def __new__(cls, *args: Any, **kwargs: Any) -> HTDemucsClassReference:
        raise pickle.UnpicklingError(f"the file asks to construct {HTDEMUCS_CLASS}; demucs packages never do")


class NumpyDtype:
    """Stand-in for ``numpy.dtype`` while unpickling: keeps the type code ('f8', 'i4', ...) and nothing else."""

    def __init__(self, code: Any = None, *args: Any) -> None:
        self.code = code if isinstance(code, str) else None
        self.byte_order = "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.byte_order = state[1]


class NumpyOpaque:
    """Stand-in for any other numpy global (arrays, ...): the value is dropped from the plain data."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


_SCALAR_FORMATS = {"f8": "d", "f4": "f", "f2": "e", "i8": "q", "i4": "i", "i2": "h", "i1": "b",
                   "u8": "Q", "u4": "I", "u2": "H", "u1": "B", "b1": "?"}


def numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """Stand-in for numpy's scalar constructor: a Python number from a plain dtype and its bytes, else opaque."""
    if isinstance(dtype, NumpyDtype) and dtype.code in _SCALAR_FORMATS and isinstance(data, bytes):
        order = ">" if dtype.byte_order == ">" else "<"
        fmt = order + _SCALAR_FORMATS[dtype.code]
        if struct.calcsize(fmt) == len(data):
            return struct.unpack(fmt, data)[0]
    return NumpyOpaque()


@dataclass
class DemucsPackage:
    """The plain content of a demucs v4 model file."""

    origin: str  # the file, for messages
    class_name: str
    kwargs: dict[str, Any]
    config: HTDemucsConfig
    state: dict[str, Tensor]  # fp32
    training_args: dict[str, Any] | None = None  # plain values only
    metrics: Any = None  # plain values only
    sources: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.sources = self.config.sources

    def build_model(self) -> HTDemucs:
        """The :class:`HTDemucs` with these weights, in eval mode."""
        return build_from_config(self.config, self.state, self.origin)


# --------------------------------------------------------------------------------------------------------------
# Looking at a pickle without running it.


def pickle_globals(data: bytes) -> list[str]:
    """Every global ("module.name") a pickle refers to, read opcode by opcode (nothing is executed).

    Raises ``ValueError`` for bytes that are not a complete pickle.
    """
    names: list[str] = []
    pushed: list[Any] = []  # values of the recent string pushes and memo fetches, for STACK_GLOBAL
    memo: dict[Any, Any] = {}
    string_ops = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
                  "STRING"}
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            names.append(".".join(str(arg).split(" ", 1)))
        elif name == "STACK_GLOBAL":
            module, qualname = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else ("?", "?")
            names.append(f"{module}.{qualname}")
        if name in string_ops:
            pushed.append(arg)
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(arg))
        elif name != "STACK_GLOBAL":
            pushed.append(None)
        del pushed[:-2]
    return names


def _archive_pickle(path: Path) -> bytes:
    """The ``data.pkl`` record of a torch zip archive."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member == "data.pkl" or member.endswith("/data.pkl"):
                return archive.read(member)
    raise KeyError("data.pkl")


def is_demucs_package(path: str | Path) -> bool:
    """Whether ``path`` is a torch zip archive whose pickle names a demucs class (loads nothing).

    True also for demucs classes ugosa refuses, so :func:`read_demucs_package` can say why.
    """
    try:
        names = pickle_globals(_archive_pickle(Path(path)))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RuntimeError):
        return False
    return any(name.startswith("demucs.") for name in names)


# --------------------------------------------------------------------------------------------------------------
# Loading.

def _stand_ins(names: list[str]) -> dict[str, Any]:
    """The globals outside torch's own tensor machinery that a demucs v4 file may name, and what they become."""
    allowed: dict[str, Any] = {HTDEMUCS_CLASS: HTDemucsClassReference, "fractions.Fraction": Fraction}
    for name in names:
        if name in NUMPY_SCALAR_NAMES:
            allowed[name] = numpy_scalar
        elif name == "numpy.dtype":
            allowed[name] = NumpyDtype
        elif name.startswith("numpy."):
            allowed[name] = NumpyOpaque
    return allowed


# What the fallback unpickler resolves besides the stand-ins (storages are resolved by torch.load itself).
_TORCH_GLOBALS: dict[str, Any] = {
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
    "collections.OrderedDict": collections.OrderedDict,
    "torch.Size": torch.Size,
    "_codecs.encode": codecs.encode,  # how pickle protocol 2 stores bytes (numpy scalars in metrics)
}


def _check_globals(names: list[str], origin: str) -> None:
    """Refuse, before loading, a file whose pickle names anything a demucs v4 HTDemucs file does not."""
    for name in names:
        if name in (HTDEMUCS_CLASS, "fractions.Fraction", "_codecs.encode") or name.startswith("numpy."):
            continue
        if name.startswith("diffq."):
            raise InputError(f"{origin}: quantized demucs models are not supported; {SUPPORTED_MODELS}, unquantized")
        if name.startswith("demucs."):
            raise InputError(
                f"{origin}: the file holds a {name} model, which is not supported; {SUPPORTED_MODELS}"
            )
        if name.startswith(("torch.", "collections.", "builtins.")):
            continue  # torch's weights_only unpickler accepts its own safe ones and refuses the rest
        raise InputError(
            f"{origin}: refused: the file's pickle refers to {name} (it could run code); "
            f"only plain state dicts, ugosa checkpoints and demucs v4 HTDemucs files are loaded"
        )


@functools.lru_cache(maxsize=1)
def _supports_named_safe_globals() -> bool:
    """Whether this torch accepts ``(object, "module.name")`` entries in ``torch.serialization.safe_globals``."""
    if not hasattr(torch.serialization, "safe_globals"):
        return False
    marker = object()
    buffer = io.BytesIO()
    torch.save({"probe": Fraction(1, 2)}, buffer)
    buffer.seek(0)
    try:
        with torch.serialization.safe_globals([(lambda *args: marker, "fractions.Fraction")]):
            loaded = torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception:  # older torch: the tuple form is not understood
        return False
    return isinstance(loaded, dict) and loaded.get("probe") is marker


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed`` (the fallback for torch < 2.6)."""

    allowed: ClassVar[dict[str, Any]] = {}

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in self.allowed:
            return self.allowed[full]
        raise pickle.UnpicklingError(f"global {full} is not allowed")


def _restricted_pickle_module(allowed: dict[str, Any]) -> Any:
    unpickler = type("RestrictedUnpickler", (_RestrictedUnpickler,), {"allowed": {**_TORCH_GLOBALS, **allowed}})

    class Module:
        Unpickler = unpickler
        __name__ = "ugosa_restricted_pickle"

        @staticmethod
        def load(file: Any, **kwargs: Any) -> Any:
            return unpickler(file, **kwargs).load()

    return Module


def _load(path: Path, allowed: dict[str, Any]) -> Any:
    if _supports_named_safe_globals():
        entries: list[Any] = [(obj, name) for name, obj in allowed.items()]
        with torch.serialization.safe_globals(entries):
            return torch.load(path, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle_module(allowed))


def _plain(value: Any) -> Any:
    """``value`` with only plain data: containers, strings, numbers (Fractions and 0-d tensors as floats)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            plain = _plain(item)
            if isinstance(key, (str, int)) and (plain is not None or item is None):
                out[key] = plain
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return None


def _fail(origin: str, exc: BaseException) -> InputError:
    text = str(exc).strip().splitlines()
    detail = text[0] if text else type(exc).__name__
    return InputError(f"{origin}: not a readable model file (corrupt or truncated?): {detail}")


def read_demucs_package(path: str | Path) -> DemucsPackage:
    """Read a demucs v4 HTDemucs file safely (see the module docstring); ``InputError`` for anything else."""
    path = Path(path)
    origin = str(path)
    if not path.exists():
        raise InputError(f"{origin}: no such model file")
    if path.is_dir():
        raise InputError(f"{origin}: is a folder, not a model file")
    try:
        if not zipfile.is_zipfile(path):
            names = pickle_globals(path.read_bytes())  # a plain pickle: still refuse code by name
            _check_globals(names, origin)
            raise InputError(f"{origin}: not a demucs v4 model file (expected a torch zip archive)")
        names = pickle_globals(_archive_pickle(path))
    except InputError:
        raise
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError, struct.error) as exc:
        raise _fail(origin, exc) from exc
    _check_globals(names, origin)
    if HTDEMUCS_CLASS not in names:
        raise InputError(f"{origin}: not a demucs v4 model file (it names no demucs model class); {SUPPORTED_MODELS}")
    try:
        content = _load(path, _stand_ins(names))
    except pickle.UnpicklingError as exc:
        raise InputError(
            f"{origin}: refused: the file holds Python objects other than a demucs v4 HTDemucs package "
            f"(it could run code): {str(exc).strip().splitlines()[0] if str(exc).strip() else 'unpickling refused'}"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise _fail(origin, exc) from exc
    return _package_from_content(content, origin)


def _package_from_content(content: Any, origin: str) -> DemucsPackage:
    if not isinstance(content, dict) or not {"klass", "kwargs", "state"} <= set(content):
        raise InputError(f"{origin}: not a demucs v4 model package (expected klass, args, kwargs and state)")
    klass = content["klass"]
    if klass is not HTDemucsClassReference:
        raise InputError(f"{origin}: the package's klass is {klass!r}, not {HTDEMUCS_CLASS}; {SUPPORTED_MODELS}")
    if content.get("args") not in ((), [], None):
        raise InputError(f"{origin}: unsupported positional arguments {content['args']!r} for {HTDEMUCS_CLASS}")
    kwargs = content["kwargs"]
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise InputError(f"{origin}: the package's kwargs are not a dict of named settings")
    state = content["state"]
    if not isinstance(state, Mapping):
        raise InputError(f"{origin}: the package's state is not a state dict")
    if state.get("__quantized"):
        raise InputError(f"{origin}: quantized demucs models are not supported; {SUPPORTED_MODELS}, unquantized")
    for key, value in kwargs.items():
        if isinstance(value, (NumpyOpaque, NumpyDtype)) or callable(value):
            raise InputError(f"{origin}: the setting {key} holds a {type(value).__name__}, which ugosa does not read")
    config = config_from_kwargs(kwargs, origin)
    tensors: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor) or not value.is_floating_point():
            raise InputError(f"{origin}: state dict entry {key!r} is not a floating-point tensor")
        tensors[key] = value.float()
    training_args = _plain(content.get("training_args"))
    return DemucsPackage(
        origin=origin,
        class_name=HTDEMUCS_CLASS,
        kwargs=dict(kwargs),
        config=config,
        state=tensors,
        training_args=training_args if isinstance(training_args, dict) else None,
        metrics=_plain(content.get("metrics")),
    )


__all__ = [
    "HTDEMUCS_CLASS",
    "DemucsPackage",
    "HTDemucsClassReference",
    "is_demucs_package",
    "pickle_globals",
    "read_demucs_package",
]
