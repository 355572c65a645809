"""What a sandbox's m3ter organization holds, read with plain `requests` as any client would."""

from __future__ import annotations

from typing import Any

import requests

COLLECTIONS = (
    "accounts",
    "contracts",
    "plans",
    "pricings",
    "accountplans",
    "commitments",
    "externalmappings",
    "plantemplates",
    "aggregations",
    "compoundaggregations",
)
M3ter = dict[str, list[dict[str, Any]]]  # collection -> objects


def m3ter_token(info: dict[str, Any]) -> str:
    answer = requests.post(
        f"{info['url']}/oauth/token",
        auth=(info["access_key_id"], info["api_secret"]),
        json={"grant_type": "client_credentials"},
        verify=info["ca_file"],
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def read_m3ter(info: dict[str, Any]) -> M3ter:
    """Every object of the collections the demo fills or refers to, a page of 100 at a time."""
    headers = {"Authorization": f"Bearer {m3ter_token(info)}"}
    state: M3ter = {}
    for collection in COLLECTIONS:
        objects: list[dict[str, Any]] = []
        params: dict[str, Any] = {"pageSize": 100}
        while True:
            answer = requests.get(
                f"{info['url']}/organizations/{info['org_id']}/{collection}",
                params=params,
                headers=headers,
                verify=info["ca_file"],
                timeout=30,
            )
            answer.raise_for_status()
            page = answer.json()
            objects += page["data"]
            if not page.get("nextToken"):
                break
            params["nextToken"] = page["nextToken"]
        state[collection] = objects
    return state
