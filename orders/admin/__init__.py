"""The order screens: subscriptions, renewals due and reminders, the price list."""

from orders.admin import orders, prices, renewals  # noqa: F401  (register their admins)
