"""Which address a request came from, behind the proxies `DJANGO_PROXY_COUNT` says there are.

Login throttling (django-axes) keys lockouts on this address, through django-ipware."""


def client_address_settings(proxy_count: int) -> dict:
    """django-axes' django-ipware settings for `proxy_count` proxies in front of the portal.

    Each proxy appends the address it received the request from to X-Forwarded-For (nginx:
    `$proxy_add_x_forwarded_for`), so the client is the `proxy_count`-th entry from the right;
    what stands further left was written by the client and is ignored. With no proxy the
    header is ignored altogether and the connection's own address counts.
    """
    if proxy_count <= 0:
        return {
            "AXES_IPWARE_PROXY_COUNT": None,
            "AXES_IPWARE_META_PRECEDENCE_ORDER": ("REMOTE_ADDR",),
        }
    return {
        # django-ipware counts the entries to the right of the client's; the nearest proxy's
        # own address is REMOTE_ADDR, not one of them.
        "AXES_IPWARE_PROXY_COUNT": proxy_count - 1,
        "AXES_IPWARE_PROXY_ORDER": "left-most",
        "AXES_IPWARE_META_PRECEDENCE_ORDER": ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"),
        # At least that many entries, not exactly: a client may send a header of its own,
        # which the proxies append to.
        "IPWARE_STRICT": False,
    }
