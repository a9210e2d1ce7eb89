"""The console needs no emulator: it is its own provider (nothing leaves the application). Kept so that every
adapter folder has the same files; ``ConsoleEmulator`` only records what was sent, for symmetry in tests."""

from __future__ import annotations


class ConsoleEmulator:
    """Collects ``OutgoingMessage`` objects passed to ``send`` (a stand-in client for tests)."""

    def __init__(self):
        self.sent: list = []

    def start(self) -> str:
        return ""

    def stop(self) -> None:
        pass
