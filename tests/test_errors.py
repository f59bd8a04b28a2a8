"""Bad input fails loudly and helpfully: the op, the values seen, what is accepted."""

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        tinyllm.ones(2, 3) + tinyllm.ones(4)


def test_matmul_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        tinyllm.ones(2, 3) @ tinyllm.ones(4, 5)


def test_reshape_mismatch():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape .*\(2, 3\).*\(4,\)"):
        tinyllm.ones(2, 3).reshape(4)


def test_dim_out_of_range():
    with pytest.raises(IndexError, match=r"sum: dim 2 is out of range.*accepted: -2..1"):
        tinyllm.ones(2, 3).sum(2)


def test_cross_entropy_target_out_of_range():
    with pytest.raises(ValueError, match=r"target 7 is out of range for 5 classes"):
        F.cross_entropy(tinyllm.ones(2, 5), np.array([1, 7]))


def test_cross_entropy_negative_target():
    with pytest.raises(ValueError, match=r"target -3 is out of range"):
        F.cross_entropy(tinyllm.ones(2, 5), np.array([1, -3]))


def test_cross_entropy_target_shape():
    with pytest.raises(ValueError, match=r"target of shape \(3,\).*input of shape \(2, 5\)"):
        F.cross_entropy(tinyllm.ones(2, 5), np.array([1, 2, 3]))


def test_cross_entropy_float_target():
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(tinyllm.ones(2, 5), np.array([1.0, 2.0]))


def test_unknown_reduction_lists_accepted():
    with pytest.raises(ValueError, match=r"unknown reduction 'avg'; accepted: mean, sum, none"):
        F.cross_entropy(tinyllm.ones(2, 5), np.array([1, 2]), reduction="avg")


def test_unknown_approximate_lists_accepted():
    with pytest.raises(ValueError, match=r"unknown approximate 'fast'; accepted: none, tanh"):
        F.gelu(tinyllm.ones(2), approximate="fast")


def test_layer_norm_shape_mismatch():
    with pytest.raises(ValueError, match=r"normalized_shape \(5,\) does not match"):
        F.layer_norm(tinyllm.ones(2, 4), (5,))


def test_embedding_index_out_of_range():
    with pytest.raises(IndexError, match=r"index 9 is out of range for a table of 4 rows"):
        F.embedding(np.array([1, 9]), tinyllm.ones(4, 3))


def test_linear_feature_mismatch():
    with pytest.raises(ValueError, match=r"linear: input has 3 features"):
        F.linear(tinyllm.ones(2, 3), tinyllm.ones(5, 4))


def test_dropout_probability():
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        F.dropout(tinyllm.ones(2), 1.5)


def test_cat_shape_mismatch():
    with pytest.raises(ValueError, match=r"cat: .*\(2, 3\) and \(3, 3\)"):
        tinyllm.cat([tinyllm.ones(2, 3), tinyllm.ones(3, 3)], dim=1)


def test_masked_fill_mask_must_broadcast_to_input():
    with pytest.raises(ValueError, match="does not broadcast"):
        tinyllm.ones(3).masked_fill(np.ones((2, 3), bool), 0.0)
