"""Probe (issue 11 item 7, opt-in, not collected by pytest): host Open edX's LTI 1.3 consumer (lti-consumer-xblock
on PyPI) in the minimal Django project beside this file and talk to its token / AGS / NRPS endpoints.
Run: python -m venv v && v/bin/pip install lti-consumer-xblock cryptography && cd tests/real/openedx &&
../../../v/bin/python probe.py   — results and what fails: docs/open-edx-attempt.md."""
import django, os, json, time, uuid
os.environ["DJANGO_SETTINGS_MODULE"]="proj.settings"; django.setup()
from django.core.management import call_command; call_command('migrate', verbosity=0)
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
import jwt
from django.test import Client
from lti_consumer.models import LtiConfiguration, Lti1p3Passport, LtiAgsLineItem
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
p = Lti1p3Passport.objects.create(name="gradesync probe", context_key="course-v1:Org+C1+R1", lti_1p3_tool_public_key=pub)
cfg = LtiConfiguration(lti_1p3_passport=p, version="lti_1p3", config_store="CONFIG_ON_DB", location="block-v1:Org+C1+R1+type@lti_consumer+block@q1",
                       lti_1p3_launch_url="https://tool.test/launch", lti_1p3_oidc_url="https://tool.test/login",
                       lti_advantage_ags_mode="programmatic", lti_advantage_enable_nrps=True)
cfg.save()
print("client_id", p.lti_1p3_client_id, "passport", p.passport_id)
c = Client()
now=int(time.time())
url=f"/lti_consumer/v1/token/{p.passport_id}"
a = jwt.encode({"iss":p.lti_1p3_client_id,"sub":p.lti_1p3_client_id,"aud":"http://testserver"+url,"iat":now-5,"exp":now+60,"jti":str(uuid.uuid4())}, priv, algorithm="RS256")
scopes=" ".join(["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem","https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly","https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly","https://purl.imsglobal.org/spec/lti-ags/scope/score","https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"])
from urllib.parse import urlencode
r = c.post(url, urlencode({"grant_type":"client_credentials","client_assertion_type":"urn:ietf:params:oauth:client-assertion-type:jwt-bearer","client_assertion":a,"scope":scopes}), content_type="application/x-www-form-urlencoded")
print("token", r.status_code, r.content[:300])
tok = r.json().get("access_token")
li = LtiAgsLineItem.objects.create(lti_configuration=cfg, resource_link_id=cfg.location, label="Quiz", score_maximum=10)
base=f"/lti_consumer/v1/lti/{cfg.id}"
r = c.get(base+"/lti-ags", HTTP_AUTHORIZATION="Bearer "+tok, HTTP_ACCEPT="application/vnd.ims.lis.v2.lineitemcontainer+json")
print("lineitems", r.status_code, r.content[:400])
r = c.post(base+f"/lti-ags/{li.id}/scores", json.dumps({"userId":"u1","scoreGiven":7,"scoreMaximum":10,"timestamp":"2026-11-30T03:00:00.000Z","activityProgress":"Completed","gradingProgress":"FullyGraded"}), content_type="application/vnd.ims.lis.v1.score+json", HTTP_AUTHORIZATION="Bearer "+tok)
print("score", r.status_code, r.content[:400])
r = c.get(base+f"/lti-ags/{li.id}/results", HTTP_AUTHORIZATION="Bearer "+tok, HTTP_ACCEPT="application/vnd.ims.lis.v2.resultcontainer+json")
print("results", r.status_code, r.content[:400])
try:
    r = c.get(base+"/memberships", HTTP_AUTHORIZATION="Bearer "+tok, HTTP_ACCEPT="application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
    print("nrps", r.status_code, r.content[:300])
except Exception as e:
    print("nrps EXC", type(e).__name__, str(e)[:300])
