"""Order list filters for the admin."""

from django.utils import timezone

from orders import reports
from portal.admin.changelists import NeedsAttentionFilter


class SubscriptionNeedsAttentionFilter(NeedsAttentionFilter):
    """The order list shows subscriptions only, so a subscription whose renewal is stuck
    needs attention too: otherwise that renewal would show on no list."""

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(reports.subscription_needs_attention_q(now=timezone.now()))
        return queryset
