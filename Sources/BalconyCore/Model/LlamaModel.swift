// Forward pass: written by the lead; see LlamaModel API below.
