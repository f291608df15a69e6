"""Weighted k-NN classification of frozen features (Wu et al., 2018; DINO's protocol): cosine
similarity, the k nearest training features vote with weight ``exp(sim / T)``."""
import torch
import torch.nn.functional as F
from torch import Tensor


def pool_features(out) -> Tensor:
    """One vector per image from a backbone output: the last element of a tuple; ``[B, N, D]``
    tokens → mean of the patch tokens (cls dropped); ``[B, C, H, W]`` → spatial mean."""
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if out.dim() == 3:
        return out[:, 1:].mean(1) if out.shape[1] > 1 else out[:, 0]
    if out.dim() == 4:
        return out.mean((2, 3))
    return out


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
