"""``societies view``: the web viewer over run stores (``app``); its SQL is in
``societies.store.queries`` with the rest of the store's."""
