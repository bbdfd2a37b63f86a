"""MiniRocket-style random convolutional features for multichannel time series (label-free).

After Dempster, Schmidt & Webb, "MiniRocket: a very fast (almost) deterministic transform for
time series classification", KDD 2021 (multivariate variant): the 84 length-9 kernels with
weights -1 and three +2 (every choice of 3 positions out of 9), exponentially spaced dilations up
to a receptive field of `window` frames, each (dilation, kernel) applied to the sum of a random
subset of channels (the convolution is linear, so the channels are summed first), biases drawn
from quantiles of the convolution output on random fitting series, and one feature per bias: the
proportion of positive values (PPV) of output minus bias. Half of the (dilation, kernel) pairs
count only the positions where the kernel fits without padding, as in the original.

Channels are standardised with the fitting series' mean and std; missing samples (NaN) become 0
after standardisation, i.e. the fitting mean. Series may differ in length; each one's PPV is
over its own frames.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

NUM_KERNELS = 84
KERNEL_LENGTH = 9
_COMBOS = np.array(list(itertools.combinations(range(KERNEL_LENGTH), 3)))
_PHI = (np.sqrt(5.0) + 1.0) / 2.0


def _kernel_weights() -> torch.Tensor:
    w = -np.ones((NUM_KERNELS, KERNEL_LENGTH), np.float32)
    w[np.arange(NUM_KERNELS)[:, None], _COMBOS] = 2.0
    return torch.from_numpy(w[:, None, :])  # (84, 1, 9) for a grouped conv1d


def _dilations(num_features: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(dilations, features per kernel at each dilation), as MiniRocket spaces them."""
    per_kernel = max(1, num_features // NUM_KERNELS)
    max_exp = np.log2(max(window - 1, KERNEL_LENGTH - 1) / (KERNEL_LENGTH - 1))
    n = min(per_kernel, 32)
    dil, counts = np.unique(np.floor(np.logspace(0, max_exp, n, base=2)).astype(np.int64),
                            return_counts=True)
    per_dil = counts * per_kernel // counts.sum()
    for i in range(per_kernel - int(per_dil.sum())):
        per_dil[i % len(per_dil)] += 1
    return dil, per_dil


class MiniRocket:
    """fit(series) -> transform(series) -> (N, features) float32 PPV features in [0, 1]."""

    def __init__(self, num_features: int = 9996, window: int = 120, seed: int = 0):
        self.num_features, self.window, self.seed = num_features, window, seed
        self.weights = _kernel_weights()

    # --- state, for safetensors
    def state(self) -> dict[str, torch.Tensor]:
        return {"mean": torch.from_numpy(self.mean), "std": torch.from_numpy(self.std),
                "dilations": torch.from_numpy(self.dilations),
                "per_dilation": torch.from_numpy(self.per_dilation),
                "channel_masks": self.masks, "biases": torch.cat(self.biases, dim=1)}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], seed: int = 0) -> MiniRocket:
        r = cls(seed=seed)
        r.mean, r.std = state["mean"].numpy(), state["std"].numpy()
        r.dilations = state["dilations"].numpy().astype(np.int64)
        r.per_dilation = state["per_dilation"].numpy().astype(np.int64)
        r.masks = state["channel_masks"].float()
        r.biases = list(torch.split(state["biases"].float(), r.per_dilation.tolist(), dim=1))
        r.num_features = int(NUM_KERNELS * r.per_dilation.sum())
        return r

    @property
    def num_output(self) -> int:
        return int(NUM_KERNELS * self.per_dilation.sum())

    def fit(self, series: list[np.ndarray]) -> MiniRocket:
        """series: list of (C, T_i) float arrays (NaN = missing)."""
        rng = np.random.default_rng(self.seed)
        allf = np.concatenate(series, axis=1).astype(np.float64)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(allf, axis=1) if np.isnan(allf).any() else allf.mean(1)
            std = np.nanstd(allf, axis=1) if np.isnan(allf).any() else allf.std(1)
        self.mean = np.nan_to_num(mean).astype(np.float32)
        self.std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0).astype(np.float32)
        c = allf.shape[0]
        self.dilations, self.per_dilation = _dilations(self.num_features, self.window)
        masks, biases, q_index = [], [], 0
        for di, (d, nf) in enumerate(zip(self.dilations, self.per_dilation)):
            n_ch = np.floor(2 ** rng.uniform(0, np.log2(min(c, 9) + 1), NUM_KERNELS)).astype(int)
            m = np.zeros((NUM_KERNELS, c), np.float32)
            for k in range(NUM_KERNELS):
                m[k, rng.choice(c, n_ch[k], replace=False)] = 1.0
            masks.append(m)
            example = rng.integers(len(series), size=NUM_KERNELS)
            b = np.zeros((NUM_KERNELS, nf), np.float32)
            for e in np.unique(example):
                ks = np.flatnonzero(example == e)
                out = self._conv(self._standardise(series[e])[None], torch.from_numpy(m), d)[0]
                for k in ks:
                    q = ((np.arange(nf) + q_index + k * nf + 1) * _PHI) % 1.0
                    b[k] = np.quantile(out[k].numpy(), q)
            q_index += NUM_KERNELS * nf
            biases.append(torch.from_numpy(b))
        self.masks = torch.from_numpy(np.stack(masks))  # (n_dilations, 84, C)
        self.biases = biases
        return self

    def _standardise(self, s: np.ndarray) -> torch.Tensor:
        x = (np.asarray(s, np.float32) - self.mean[:, None]) / self.std[:, None]
        return torch.from_numpy(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))

    def _conv(self, x: torch.Tensor, mask: torch.Tensor, d: int) -> torch.Tensor:
        """x (N, C, T) -> (N, 84, T): each kernel on the sum of its channels, zero padding."""
        z = torch.einsum("kc,nct->nkt", mask, x)
        return torch.nn.functional.conv1d(z, self.weights, padding=4 * int(d),
                                          dilation=int(d), groups=NUM_KERNELS)

    def transform(self, series: list[np.ndarray], batch: int = 64) -> np.ndarray:
        out = np.zeros((len(series), self.num_output), np.float32)
        order = np.argsort([s.shape[1] for s in series], kind="stable")
        with torch.no_grad():
            for start in range(0, len(order), batch):
                ids = order[start:start + batch]
                out[ids] = self._transform_batch([series[i] for i in ids])
        return out

    def _transform_batch(self, series: list[np.ndarray]) -> np.ndarray:
        lengths = torch.tensor([s.shape[1] for s in series])
        t_max = int(lengths.max())
        x = torch.zeros((len(series), series[0].shape[0], t_max))
        for i, s in enumerate(series):
            x[i, :, :s.shape[1]] = self._standardise(s)
        pos = torch.arange(t_max)
        feats = []
        for di, d in enumerate(self.dilations):
            d = int(d)
            y = self._conv(x, self.masks[di], d)  # (N, 84, T)
            full = pos[None] < lengths[:, None]  # (N, T)
            fits = lengths > 8 * d
            valid = full & ((pos[None] >= 4 * d) & (pos[None] < lengths[:, None] - 4 * d)
                            | ~fits[:, None])
            odd = ((torch.arange(NUM_KERNELS) + di) % 2 == 1)  # pairs counting unpadded only
            keep = torch.where(odd[None, :, None], valid[:, None, :], full[:, None, :])
            y = torch.where(keep, y, torch.tensor(-torch.inf))
            if self.biases[di].shape[1] <= 4:  # few biases: count directly
                above = (y.unsqueeze(-1) > self.biases[di][None, :, None, :]).sum(dim=2)
            else:  # many: sort once, then binary search every bias
                y, _ = torch.sort(y, dim=2)
                b = self.biases[di][None].expand(len(series), -1, -1).contiguous()
                above = t_max - torch.searchsorted(y.contiguous(), b, right=True)
            n = keep.sum(dim=2, keepdim=True).clamp(min=1)
            feats.append((above.float() / n).reshape(len(series), -1))
        return torch.cat(feats, dim=1).numpy()
