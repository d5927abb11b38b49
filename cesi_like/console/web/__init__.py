"""The browser side: pages, forms and their live fragments (thin adapters over services)."""
