"""kubernetes-asyncio adapters: informers, work queue, traffic patcher, status writer, events, leases."""
