"""Adapters that look at the world: DNS resolution and geolocation of addresses."""
