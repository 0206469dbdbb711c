SECRET_KEY="x"; DEBUG=True; ALLOWED_HOSTS=["*"]; ROOT_URLCONF="proj.urls"; USE_TZ=True
INSTALLED_APPS=["django.contrib.auth","django.contrib.contenttypes","rest_framework","django_filters","lti_consumer"]
DATABASES={"default":{"ENGINE":"django.db.backends.sqlite3","NAME":"/tmp/gradesync-openedx-probe.sqlite3"}}
USAGE_ID_PATTERN = r'(?P<usage_id>(?:i4x://?[^/]+/[^/]+/[^/]+/[^@]+(?:@[^/]+)?)|(?:[^/]+))'
LMS_ROOT_URL="http://127.0.0.1:8000"
