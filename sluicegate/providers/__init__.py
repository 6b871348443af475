"""Provider adapters: canonical request -> provider wire -> canonical response or stream."""
