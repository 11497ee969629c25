"""Console progress helpers shared by the training loops."""


def hms(seconds: float) -> str:
    """Seconds as H:MM:SS (ETAs and wall times)."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
