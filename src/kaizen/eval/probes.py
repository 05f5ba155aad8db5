"""Representation probes on frozen features: weighted kNN and a linear classifier.

Both probes are task-agnostic: they predict over every class of the training features given
(all classes seen so far), with no task id. The backbone is only read, in eval mode, so the
probes never change its weights or its BatchNorm statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def extract_features(
    backbone: nn.Module, images: Tensor, normalize: nn.Module, batch_size: int
) -> Tensor:
    """Pooled features (N, F) of uint8 images (N, C, H, W), the backbone in eval mode.

    The backbone's training flag is restored afterwards; features of a backbone whose output has
    more than two dimensions are flattened per image.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        chunks = [
            backbone(normalize(images[start : start + batch_size])).flatten(start_dim=1).float()
            for start in range(0, len(images), batch_size)
        ]
    finally:
        backbone.train(was_training)
    return torch.cat(chunks) if chunks else images.new_empty((0, 0), dtype=torch.float32)


@torch.no_grad()
def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> Tensor:
    """Weighted kNN predictions (Wu et al. 2018, the kNN monitor of solo-learn).

    Each test row votes with its k most cosine-similar training rows; neighbour n adds
    exp(sim_n / temperature) to its class, and the class with the largest sum wins (ties: the
    lowest class index). Test rows are processed ``chunk_size`` at a time, so memory is bounded by
    chunk_size x N_train similarities.

    Args:
        train_features: (N_train, F) features of the labelled bank.
        train_labels: (N_train,) int64 labels in [0, C).
        test_features: (N_test, F) features to classify.
        k: neighbours per test row (at most N_train are used).
        temperature: scale of the similarity weights; a large one approaches a plain majority.

    Returns:
        (N_test,) int64 predicted labels.
    """
    if len(train_features) == 0:
        raise ValueError("knn_predict needs at least one training feature")
    bank = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(bank.device).long()
    num_classes = int(labels.max()) + 1
    neighbours = min(k, len(bank))
    predictions = []
    for start in range(0, len(test_features), chunk_size):
        queries = F.normalize(test_features[start : start + chunk_size].float(), dim=1)
        similarity, index = (queries @ bank.T).topk(neighbours, dim=1)
        votes = torch.zeros(len(queries), num_classes, device=bank.device)
        votes.scatter_add_(1, labels[index], (similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions) if predictions else labels.new_empty(0)


def linear_probe_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    num_classes: int,
    epochs: int = 100,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    seed: int = 0,
    batch_size: int = 512,
) -> Tensor:
    """Predictions of a linear classifier trained on standardised frozen features.

    Features are standardised with the mean and standard deviation of the training rows (the test
    rows reuse them). The classifier starts at zero (softmax regression is convex, so no random
    start is needed) and is trained with cross-entropy and SGD (momentum 0.9, cosine learning
    rate) over mini-batches whose order is drawn from a generator seeded with ``seed``; the
    global random state is left untouched and equal inputs give equal predictions.

    Args:
        train_features: (N_train, F) features.
        train_labels: (N_train,) int64 labels in [0, num_classes).
        test_features: (N_test, F) features to classify.
        num_classes: classes of the classifier (all classes seen so far).
        batch_size: rows per step; at least N_train trains full-batch.

    Returns:
        (N_test,) int64 predicted labels.
    """
    if len(train_features) == 0:
        raise ValueError("linear_probe_predict needs at least one training feature")
    train = train_features.detach().float()
    mean = train.mean(dim=0)
    std = train.std(dim=0, unbiased=False).clamp_min(1e-6)
    train = (train - mean) / std
    labels = train_labels.to(train.device).long()
    weight = torch.zeros(num_classes, train.shape[1], device=train.device, requires_grad=True)
    bias = torch.zeros(num_classes, device=train.device, requires_grad=True)
    steps_per_epoch = -(-len(train) // batch_size)
    optimizer = torch.optim.SGD([weight, bias], lr=lr, momentum=0.9, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(train), generator=generator).to(train.device)
            for batch in order.split(batch_size):
                loss = F.cross_entropy(F.linear(train[batch], weight, bias), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    with torch.no_grad():
        test = (test_features.float().to(train.device) - mean) / std
        return F.linear(test, weight, bias).argmax(dim=1)
