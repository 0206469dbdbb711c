from django.urls import include, path
urlpatterns=[path("", include("lti_consumer.plugin.urls"))]
