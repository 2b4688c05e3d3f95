"""Built-in classifiers: MLP, LeNet-5 and ResNet-20 (CIFAR style), each with a width factor.

:func:`build_model` is the one entry point: it checks the model name and that the
input shape suits the architecture, and raises :class:`~sgdnoise.errors.UsageError`
otherwise, before any work starts.

The architectures
-----------------
``mlp``
    flatten, two hidden layers of ``round(64 width)`` ReLU units, linear read-out.
``lenet``
    LeNet-5 (LeCun et al. 1998): two blocks conv 5x5 -> ReLU -> max-pool 2x2 with
    ``round(6 width)`` and ``round(16 width)`` channels, then fully connected layers of
    ``round(120 width)`` and ``round(84 width)`` ReLU units and the read-out.  Images of
    side >= 16 (CIFAR-10: 32) use unpadded convolutions (the classic layout, 16 x 5 x 5
    features for 32 x 32 inputs); smaller images (digits: 8 x 8) pad each convolution by 2
    so that the two pooling stages still fit.
``resnet20``
    ResNet-20 for CIFAR (He et al. 2016, section 4.2): a 3x3 convolution with
    ``round(16 width)`` channels, three stages of three basic blocks (two 3x3
    convolutions with batch norm) with 16, 32, 64 channels (times ``width``), stride 2
    at the start of stages 2 and 3, parameter-free identity shortcuts (option A:
    subsampling and zero-padded channels), global average pooling, linear read-out.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sgdnoise.errors import UsageError

MODELS = ("mlp", "lenet", "resnet20")


def _scaled(channels: int, width: float) -> int:
    """``max(1, round(channels * width))``: a layer size scaled by the width factor."""
    return max(1, round(channels * width))


class MLP(nn.Sequential):
    """Fully connected ReLU network ``flatten -> (Linear -> ReLU) x depth -> Linear``.

    Parameters
    ----------
    in_features : int
        Number of input features after flattening.
    n_classes : int
        Number of outputs (logits).
    width : float
        Hidden layers have ``round(64 width)`` units.
    depth : int
        Number of hidden layers.
    """

    def __init__(self, in_features: int, n_classes: int, width: float = 1.0, depth: int = 2) -> None:
        hidden = _scaled(64, width)
        layers: list[nn.Module] = [nn.Flatten()]
        size = in_features
        for _ in range(depth):
            layers += [nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        layers.append(nn.Linear(size, n_classes))
        super().__init__(*layers)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., Proc. IEEE 86, 2278, 1998) with ReLU and max-pooling.

    Parameters
    ----------
    in_channels : int
        Colour channels of the input images.
    image_size : int
        Side of the (square) input images; convolutions are padded by 2 when it is
        below 16 (see the module docstring).
    n_classes : int
        Number of outputs (logits).
    width : float
        Factor on every layer size (6, 16, 120, 84).
    """

    def __init__(self, in_channels: int, image_size: int, n_classes: int, width: float = 1.0) -> None:
        super().__init__()
        pad = 0 if image_size >= 16 else 2
        c1, c2 = _scaled(6, width), _scaled(16, width)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = ((image_size + 2 * pad - 4) // 2 + 2 * pad - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * side * side, _scaled(120, width)), nn.ReLU(),
            nn.Linear(_scaled(120, width), _scaled(84, width)), nn.ReLU(),
            nn.Linear(_scaled(84, width), n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class _BasicBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers with a parameter-free shortcut (He et al. option A)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(out + shortcut)


class ResNet20(nn.Module):
    """ResNet-20 for CIFAR-10 (He et al., CVPR 2016, section 4.2), width-scaled.

    Parameters
    ----------
    in_channels : int
        Colour channels of the input images.
    n_classes : int
        Number of outputs (logits).
    width : float
        Factor on the channel counts 16, 32, 64.
    """

    def __init__(self, in_channels: int, n_classes: int, width: float = 1.0) -> None:
        super().__init__()
        channels = [_scaled(c, width) for c in (16, 32, 64)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels[0]), nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        previous = channels[0]
        for stage, c in enumerate(channels):
            for b in range(3):
                blocks.append(_BasicBlock(previous, c, 2 if stage > 0 and b == 0 else 1))
                previous = c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_model(name: str, input_shape: Sequence[int], n_classes: int, width: float = 1.0) -> nn.Module:
    """A built-in classifier for inputs of shape ``input_shape`` (one example, no batch axis).

    Parameters
    ----------
    name : {"mlp", "lenet", "resnet20"}
    input_shape : sequence of int
        Shape of one example: any shape for ``mlp``; ``(C, H, W)`` with square images
        for ``lenet`` and ``resnet20``.
    n_classes : int
        Number of classes (logits), at least 2.
    width : float
        Layer-size factor (> 0).

    Raises
    ------
    UsageError
        Unknown name, non-positive width, or an input shape the architecture cannot take.
    """
    if name not in MODELS:
        raise UsageError(f"--model must be one of {', '.join(MODELS)}; got {name!r}")
    if not width > 0:
        raise UsageError(f"--width must be positive; got {width}")
    if n_classes < 2:
        raise UsageError(f"the data must have at least 2 classes; got {n_classes}")
    shape = tuple(int(s) for s in input_shape)
    if name == "mlp":
        return MLP(int(torch.tensor(shape).prod()), n_classes, width)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 4:
        raise UsageError(
            f"--model {name} needs square images of shape (channels, side, side) with side >= 4; "
            f"the data has examples of shape {shape} (use --model mlp for other inputs)"
        )
    if name == "lenet":
        return LeNet5(shape[0], shape[1], n_classes, width)
    return ResNet20(shape[0], n_classes, width)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The trainable parameters of ``model`` as one detached flat vector (``model.parameters()`` order)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])
