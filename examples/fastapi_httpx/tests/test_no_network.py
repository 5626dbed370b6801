"""The suite runs without a network: no socket can be opened (pytest-socket, pytest.ini)."""

import socket

import pytest
from pytest_socket import SocketBlockedError


def test_no_internet_socket_can_be_opened():
    with pytest.warns(UserWarning, match="socket"), pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
