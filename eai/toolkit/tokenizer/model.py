"""The spatio-temporal MGST codec: one small convolutional autoencoder per body part, FSQ codes.

Why FSQ (finite scalar quantisation; Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made
Simple", ICLR 2024, arXiv:2309.15505) rather than a VQ-VAE with EMA codebooks: each latent
channel is bounded (tanh) and rounded to a few levels, so the code grid is fixed — there is no
codebook to collapse, no commitment loss, no EMA decay, no dead-code restarts, hence fewer
hyper-parameters and training that is deterministic and easy to reproduce on CPU. With levels
(8, 8, 8) the implicit codebook has 512 codes. The code grid is the same for every part, so all
parts and datasets share one vocabulary (the paper's unified skeleton tokens); usage (used and
dead codes, perplexity) is still measured and reported.

The five parts run side by side as grouped convolutions (groups = parts): one op per layer for
the whole body, parts never see each other. Layout: (B, P * C, T) with part-major channels.
Time downsampling: two stride-2 convolutions (x4); the decoder mirrors them with transposed
convolutions. Every layer output is multiplied by a time mask so that frames past a clip's
end (batch padding) behave like convolution zero padding: a clip encodes to the same codes
alone or in a batch with longer clips.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FSQ(nn.Module):
    """Finite scalar quantisation over the last dim of (..., d) -> codes (...,) in [0, prod(L))."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("levels", lv, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + list(levels[:-1])), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.num_codes = int(math.prod(levels))

    def bound(self, z: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        half_l = (self.levels - 1) * (1 - eps) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., d) -> (quantised values in [-1, 1] with straight-through gradient, codes)."""
        b = self.bound(z)
        q = b + (torch.round(b) - b).detach()
        half = torch.div(self.levels, 2, rounding_mode="floor")
        return q / half, self.to_codes(torch.round(b).detach())

    def to_codes(self, q_int: torch.Tensor) -> torch.Tensor:
        half = torch.div(self.levels, 2, rounding_mode="floor")
        return ((q_int + half) * self.basis).sum(-1).long()

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (...,) -> quantised values (..., d) in [-1, 1]."""
        half = torch.div(self.levels, 2, rounding_mode="floor")
        digits = torch.remainder(torch.div(codes[..., None], self.basis, rounding_mode="floor"),
                                 self.levels.long())
        return (digits - half) / half


class _Res(nn.Module):
    def __init__(self, ch: int, groups: int, dilation: int):
        super().__init__()
        self.c1 = nn.Conv1d(ch, ch, 3, padding=dilation, dilation=dilation, groups=groups)
        self.c2 = nn.Conv1d(ch, ch, 1, groups=groups)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return x + self.c2(torch.relu(self.c1(torch.relu(x)))) * m


class PartCodec(nn.Module):
    """Encoder/decoder for P parts at once: (B, P*c_in, T) -> codes (B, P, T/4) -> (B, P*c_out, T).

    c_in: values + mask channels per part; c_out: values per part; hidden: channels per part;
    depth: residual blocks per resolution (dilations 1, 3, 9, ...)."""

    def __init__(self, parts: int, c_in: int, c_out: int, hidden: int, levels: tuple[int, ...],
                 downsample: int = 2, depth: int = 2):
        super().__init__()
        P, H, d = parts, parts * hidden, len(levels)
        self.parts, self.dim, self.downsample = parts, d, downsample
        self.fsq = FSQ(levels)
        self.enc_in = nn.Conv1d(P * c_in, H, 3, padding=1, groups=P)
        self.enc_down = nn.ModuleList(nn.Conv1d(H, H, 4, 2, 1, groups=P) for _ in range(downsample))
        self.enc_res = nn.ModuleList(nn.ModuleList(_Res(H, P, 3 ** i) for i in range(depth))
                                     for _ in range(downsample))
        self.enc_out = nn.Conv1d(H, P * d, 1, groups=P)
        self.dec_in = nn.Conv1d(P * d, H, 3, padding=1, groups=P)
        self.dec_res = nn.ModuleList(
            nn.ModuleList(_Res(H, P, 3 ** i) for i in reversed(range(depth)))
            for _ in range(downsample))
        self.dec_up = nn.ModuleList(nn.ConvTranspose1d(H, H, 4, 2, 1, groups=P)
                                    for _ in range(downsample))
        self.dec_out = nn.Conv1d(H, P * c_out, 3, padding=1, groups=P)

    @property
    def factor(self) -> int:
        return 2 ** self.downsample

    def _masks(self, lengths: torch.Tensor, t: int) -> list[torch.Tensor]:
        """Time masks (B, 1, T / 2^k) for k = 0..downsample; lengths are in input frames."""
        out = []
        for k in range(self.downsample + 1):
            n = -(-lengths // 2 ** k)
            out.append((torch.arange(t // 2 ** k)[None] < n[:, None]).float()[:, None])
        return out

    def latents(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, P*c_in, T), T a multiple of 4 -> unbounded latents (B, P, T/4, d)."""
        ms = self._masks(lengths, x.shape[-1])
        h = torch.relu(self.enc_in(x * ms[0])) * ms[0]
        for k, (down, res) in enumerate(zip(self.enc_down, self.enc_res)):
            h = torch.relu(down(h)) * ms[k + 1]
            for r in res:
                h = r(h, ms[k + 1])
        z = self.enc_out(h)
        b, _, t = z.shape
        return z.view(b, self.parts, self.dim, t).transpose(2, 3)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, P*c_in, T), T a multiple of 4 -> (quantised (B, P, T/4, d), codes (B, P, T/4))."""
        return self.fsq(self.latents(x, lengths))

    def decode(self, q: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """q (B, P, T/4, d) quantised values -> (B, P*c_out, T)."""
        b, p, t, d = q.shape
        ms = self._masks(lengths, t * self.factor)
        h = self.dec_in(q.transpose(2, 3).reshape(b, p * d, t) * ms[-1]) * ms[-1]
        for k, (res, up) in enumerate(zip(self.dec_res, self.dec_up)):
            m = ms[self.downsample - k]
            for r in res:
                h = r(h, m)
            h = torch.relu(up(torch.relu(h))) * ms[self.downsample - k - 1]
        return self.dec_out(h) * ms[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (reconstruction (B, P*c_out, T), unbounded latents (B, P, T/4, d))."""
        z = self.latents(x, lengths)
        q, _ = self.fsq(z)
        return self.decode(q, lengths), z
