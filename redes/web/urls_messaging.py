from django.urls import path

from .views import messaging

urlpatterns = [
    path("", messaging.messaging_home, name="messaging-home"),
]
