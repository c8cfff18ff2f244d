from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self):
        from orders.renewals.autorenew import register_auto_renewal

        register_auto_renewal()
