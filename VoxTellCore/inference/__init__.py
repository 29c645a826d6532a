"""Sliding-window inference on GPU or CPU."""
