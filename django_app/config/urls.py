from django.urls import path

from visits import views

# /health/ is answered by the runtime (django_docker_runtime.health), ahead of host validation.
urlpatterns = [
    path("", views.index, name="index"),
    path("whoami/", views.whoami, name="whoami"),
    path("visits/", views.visits, name="visits"),
    path("visits/<int:visit_id>/", views.visit_detail, name="visit-detail"),
    path("uploads/", views.upload, name="upload"),
]
