"""What chapter 7 (residual networks) checks numerically, asserted on the numbers the executed
chapter glued: a residual block's Jacobian is the identity plus its branch's."""
import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


def test_residual_jacobian_is_identity_plus_branch_jacobian(ch7):
    """J_H and I + J_F by finite differences, and J_H read off the backward pass."""
    assert ch7("err_identity") < 1e-8
    assert ch7("err_backward") < 1e-8
