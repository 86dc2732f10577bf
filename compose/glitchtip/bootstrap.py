# Run by `manage.py shell` in the glitchtip-setup service: makes the Parley
# organisation and project, and gives the project the fixed key that the
# replicas' SENTRY_DSN in compose.yaml names, so errors arrive without
# anyone clicking through the UI first. Idempotent: a restart of the stack
# finds everything in place.
import os
import uuid

from django.contrib.auth import get_user_model

from apps.organizations_ext.models import Organization
from apps.projects.models import Project, ProjectKey

PUBLIC_KEY = uuid.UUID("7f1b5a0c3e2d4c6b9a8f1e2d3c4b5a69")  # compose.yaml: SENTRY_DSN

User = get_user_model()
admin = User.objects.filter(email="admin@localhost").first()
if admin is None:
    admin = User.objects.create_superuser(
        email="admin@localhost", password=os.environ["GLITCHTIP_ADMIN_PASSWORD"]
    )

org, _ = Organization.objects.get_or_create(slug="parley", defaults={"name": "Parley"})
if not org.users.filter(pk=admin.pk).exists():
    org.add_user(admin)

project, _ = Project.objects.get_or_create(organization=org, name="parley-server")
if not ProjectKey.objects.filter(public_key=PUBLIC_KEY).exists():
    ProjectKey.objects.create(project=project, public_key=PUBLIC_KEY)
if project.id != 1:
    raise SystemExit(f"the Parley project is {project.id}, but SENTRY_DSN in compose.yaml names project 1")
print(f"GlitchTip: project {project.id} with key {PUBLIC_KEY.hex}")
