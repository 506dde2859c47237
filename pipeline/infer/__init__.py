"""The model step: preprocessing into the engine's input, and the infer stage."""
