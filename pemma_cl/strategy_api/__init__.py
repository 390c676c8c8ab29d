"""The strategy plugin API: the registry and each strategy's options."""
