from django.db import models


class Visit(models.Model):
    """A request recorded by the web tier and processed by a Celery worker."""

    created_at = models.DateTimeField(auto_now_add=True)
    path = models.CharField(max_length=200)
    served_by = models.CharField(max_length=255, help_text="hostname of the web replica")
    processed_at = models.DateTimeField(null=True, blank=True)
    processed_by = models.CharField(max_length=255, blank=True, help_text="hostname of the worker")
    # The task's result: how many visits had been recorded when this one was processed.
    visits_so_far = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    @property
    def processed(self) -> bool:
        return self.processed_at is not None

    def as_json(self) -> dict:
        return {"id": self.pk, "processed": self.processed, "processed_by": self.processed_by or None}
