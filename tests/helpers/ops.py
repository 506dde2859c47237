"""What torch operations a piece of device-path code issues, and which would sync."""

from __future__ import annotations

# aten ops that make the host wait for the device on CUDA (a value read back, or an
# output whose size depends on the data)
SYNC_OPS = {"_local_scalar_dense", "item", "nonzero", "masked_select", "is_nonzero", "equal",
            "allclose", "_unique", "_unique2", "unique_dim", "unique_consecutive",
            "bincount", "histc", "argwhere"}


# metadata-only ops: views and the like, which launch no kernel
VIEW_OPS = {"view", "_unsafe_view", "reshape", "select", "slice", "expand", "alias", "as_strided",
            "permute", "t", "transpose", "unsqueeze", "squeeze", "detach", "lift_fresh",
            "unbind", "split", "split_with_sizes", "chunk", "narrow", "view_as_real", "unfold"}


class OpLog:
    """Records the aten operations dispatched while active, and the ones that would
    synchronize on CUDA (see SYNC_OPS; also boolean-mask indexing and
    ``repeat_interleave`` without ``output_size``). Works on the CPU."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        log = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                name = func.overloadpacket.__name__
                log.ops.append(name)
                if log._syncs(name, args, kwargs):
                    log.syncs.append(name)
                return func(*args, **kwargs)

        self.ops: list[str] = []
        self.syncs: list[str] = []
        self._mode = _Mode()

    @staticmethod
    def _syncs(name: str, args, kwargs) -> bool:
        import torch

        base = name.rstrip("_")
        if base in SYNC_OPS:
            return True
        if base == "repeat_interleave":
            return kwargs.get("output_size") is None and (len(args) < 3 or args[-1] is None)
        if base in ("index", "index_put"):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            return any(isinstance(t, torch.Tensor) and t.dtype == torch.bool
                       for t in indices or ())
        return False

    @property
    def kernels(self) -> list[str]:
        """The ops that do work on the device (views left out)."""
        return [op for op in self.ops if op.rstrip("_") not in VIEW_OPS]

    def __enter__(self) -> OpLog:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)
