"""``societies view``: the web viewer over run stores (``app``) and all its SQL (``queries``)."""
