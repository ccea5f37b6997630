from {{project_name}} import greet


def test_greet() -> None:
    assert greet("peerpack") == "Hello, peerpack!"
