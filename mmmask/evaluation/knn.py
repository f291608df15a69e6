"""Weighted k-NN classification of frozen features (Wu et al., 2018; DINO's protocol): cosine
similarity, the k nearest training features vote with weight ``exp(sim / T)``."""
import torch
import torch.nn.functional as F
from torch import Tensor


def pool_features(out, pool: str = 'mean') -> Tensor:
    """One vector per image from a backbone output (the last element of a tuple).

    ``pool='mean'``: ``[B, N, D]`` tokens → mean of the patch tokens (cls dropped), ``[B, C, H, W]``
    → spatial mean; ``'cls'``: the cls token; ``'flatten'``: every patch token concatenated (keeps
    where things are, which a small probe budget needs on the cluttered toy digits).
    """
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if out.dim() == 4:
        out = out.flatten(2).transpose(1, 2)
        out = torch.cat([out.mean(1, keepdim=True), out], 1)  # a stand-in "cls" slot
    if out.dim() == 2:
        return out
    if pool == 'cls':
        return out[:, 0]
    if pool == 'flatten':
        return out[:, 1:].flatten(1)
    if pool != 'mean':
        raise ValueError(f"pool must be 'mean', 'cls' or 'flatten', got {pool!r}")
    return out[:, 1:].mean(1) if out.shape[1] > 1 else out[:, 0]


@torch.no_grad()
def knn_classify(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor,
                 num_classes: int, k: int = 20, temperature: float = 0.07,
                 chunk: int = 256) -> Tensor:
    """Predicted labels of ``test_feats`` by weighted k-NN over ``train_feats``."""
    train = F.normalize(train_feats.float(), dim=1)
    k = min(k, train.shape[0])
    preds = []
    for start in range(0, test_feats.shape[0], chunk):
        test = F.normalize(test_feats[start:start + chunk].float(), dim=1)
        sim, idx = (test @ train.T).topk(k, dim=1)
        votes = torch.zeros(test.shape[0], num_classes)
        votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor,
                 test_labels: Tensor, num_classes: int, k: int = 20,
                 temperature: float = 0.07) -> float:
    """Top-1 accuracy (%) of :func:`knn_classify`."""
    pred = knn_classify(train_feats, train_labels, test_feats, num_classes, k, temperature)
    return 100.0 * (pred == test_labels).float().mean().item()


def linear_probe_accuracy(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor,
                          test_labels: Tensor, num_classes: int, steps: int = 300,
                          lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0) -> float:
    """Top-1 (%) of a linear classifier on frozen, standardised features (full-batch Adam).

    Deterministic for a given ``seed``; standardisation uses the training features' statistics.
    """
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    x_train = ((train_feats - mean) / std).float()
    x_test = ((test_feats - mean) / std).float()
    gen = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(x_train.shape[1], num_classes)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=gen) * 0.01)
        linear.bias.zero_()
    opt = torch.optim.Adam(linear.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(linear(x_train), train_labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = linear(x_test).argmax(1)
    return 100.0 * (pred == test_labels).float().mean().item()
