"""Stream files (the protocol) and the Avalanche benchmark built from them."""
