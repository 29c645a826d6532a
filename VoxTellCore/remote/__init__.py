"""The torch-free VoxTell server client (Python 3.9, numpy + blosc2) and the wire format both sides share."""
