"""Signs the requests of signing_vectors.json (plus a few more) with each HMAC
signer of the official Huawei Cloud Python SDK and writes every intermediate
string to algorithm_vectors.json, which tests/algorithms.rs checks.

Run from this folder, in a throwaway venv:
    python3 -m venv /tmp/sdk-venv
    /tmp/sdk-venv/bin/pip install -r requirements.txt
    /tmp/sdk-venv/bin/python make_vectors.py
requirements.txt pins huaweicloudsdkcore==3.1.219.
"""

import copy
import json
import platform
from importlib.metadata import version

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer import hkdf
from huaweicloudsdkcore.signer.signer import DerivationAKSKSigner, SM3Signer, Signer

SOURCE = "signing_vectors.json"
TARGET = "algorithm_vectors.json"
# What the SDK's clients pass for a V11 scope: the Region's id and the
# service's derived-auth name.
REGION_ID = "eu-de"
SERVICE = "vbs"
SIGNERS = {
    "SDK-HMAC-SHA256": Signer,
    "V11-HMAC-SHA256": DerivationAKSKSigner,
    "SDK-HMAC-SM3": SM3Signer,
}
AK = "VBSGWTESTAKID0000001"
SK = "vbsGwTestSecretKey0000000000000000000001"
DATE = "20240615T083015Z"


def extra_inputs():
    """Requests the VBS vectors lack: bodies that are not JSON (the SDK marks
    them unsigned), a temporary key's token, and a host with a port."""
    base = {
        "group": "extra",
        "built_by": "signer",
        "ak": AK,
        "sk": SK,
        "scheme": "https",
        "host": "vbs.eu-de.otc.t-systems.com",
        "query": [],
    }
    return [
        dict(base, id="octet_stream_body", description="A non-JSON body: the SDK adds its unsigned-payload header.",
             method="PUT", path="/v2/p/objects/o", body="raw bytes, not json",
             headers={"X-Sdk-Date": DATE, "Content-Type": "application/octet-stream"}),
        dict(base, id="text_plain_no_body", description="A non-JSON content type without a body: header added, empty-body hash kept.",
             method="GET", path="/v2/p/backups", body="",
             headers={"X-Sdk-Date": DATE, "Content-Type": "text/plain"}),
        dict(base, id="security_token_and_port", description="Temporary key: X-Security-Token signed; Host with a port.",
             method="GET", host="127.0.0.1:8443", path="/v1/p/jobs/j", query=[["limit", "1"], ["a b", "c+d"]], body="",
             headers={"X-Sdk-Date": DATE, "Content-Type": "application/json;charset=UTF-8",
                      "X-Project-Id": "p", "X-Security-Token": "tmp-token/+=abc"}),
    ]


def sign(source, algorithm):
    captured = {}
    signer_class = SIGNERS[algorithm]

    class Capturing(signer_class):
        def _process_canonical_request(self, request, signed_headers):
            captured["canonical_request"] = super()._process_canonical_request(request, signed_headers)
            captured["signed_headers"] = ";".join(signed_headers)
            return captured["canonical_request"]

        def _process_string_to_sign(self, *args):
            captured["string_to_sign"] = super()._process_string_to_sign(*args)
            return captured["string_to_sign"]

    request = SdkRequest(
        method=source["method"],
        schema=source["scheme"],
        host=source["host"],
        resource_path=source["path"],
        query_params=[tuple(pair) for pair in source["query"]],
        header_params=copy.deepcopy(source["headers"]),
        body=source["body"] or None,
    )
    credentials = BasicCredentials(source["ak"], source["sk"])
    signer = Capturing(credentials)
    derived = None
    if algorithm == "V11-HMAC-SHA256":
        signer.sign(request, SERVICE, REGION_ID)
        info = "%s/%s/%s" % (source["headers"]["X-Sdk-Date"][:8], REGION_ID, SERVICE)
        derived = {
            "region_id": REGION_ID,
            "service": SERVICE,
            "info": info,
            "derived_key": hkdf.get_der_key_sha256(source["ak"], source["sk"], info),
        }
    else:
        signer.sign(request)

    canonical = captured["canonical_request"].split("\n")
    headers = {k: v for k, v in request.header_params.items()}
    signature = headers["Authorization"].rsplit("Signature=", 1)[1]
    vector = {k: source[k] for k in ("id", "group", "description", "ak", "sk", "method", "scheme", "host", "path", "query", "headers", "body")}
    vector["built_by"] = source.get("built_by", "signer")
    vector["algorithm"] = algorithm
    vector["id"] = "%s/%s" % (algorithm, source["id"])
    vector["expected"] = {
        "canonical_uri": canonical[1],
        "canonical_query_string": canonical[2],
        "signed_headers": captured["signed_headers"],
        "payload_hash": canonical[-1],
        "canonical_request": captured["canonical_request"],
        "string_to_sign": captured["string_to_sign"],
        "signature": signature,
        "authorization": headers["Authorization"],
        "sent_url": "%s://%s%s" % (source["scheme"], source["host"], request.uri),
        "sent_headers": headers,
    }
    if derived:
        vector["derived"] = derived
    return vector


def main():
    with open(SOURCE, encoding="utf-8") as f:
        sources = json.load(f)["vectors"] + extra_inputs()
    vectors = [sign(source, algorithm) for algorithm in SIGNERS for source in sources]
    out = {
        "title": "AK/SK signing vectors of the official Python SDK, one per request and HMAC algorithm",
        "generated_by": "make_vectors.py (this folder)",
        "sdk_package": "huaweicloudsdkcore",
        "sdk_version": version("huaweicloudsdkcore"),
        "python": platform.python_version(),
        "inputs": "the requests of %s plus the 'extra' group; X-Sdk-Date fixed in headers" % SOURCE,
        "format": "as signing_vectors.json; 'derived' (V11 only) gives region_id, service, info (the scope) and derived_key",
        "count": len(vectors),
        "vectors": vectors,
    }
    with open(TARGET, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %d vectors to %s" % (len(vectors), TARGET))


if __name__ == "__main__":
    main()
