"""What the edge (CloudFront) tells the functions about a viewer: its address and its location
(country, subdivision, city; never latitude, longitude, postal code or time zone).

Invariants (decision 0016):
- CloudFront-* headers are believed only on a request that carries the origin secret, which
  CloudFront adds as an origin custom header (terraform/cdn.tf) and the local front adds locally.
  Anyone else who reaches a function URL (they are public, decision 0023) can send
  CloudFront-Viewer-Address too; without the secret those headers are ignored and the viewer is
  the connection's own address (the event's sourceIp, set by Lambda), with no location.
- The functions hold only SHA-256 digests of the secrets they accept (the generation CloudFront
  sends and both of its neighbours, so a rotation is accepted whichever of CloudFront and the
  functions changes first: terraform/secrets.tf), compared in constant time.
- X-Forwarded-For is client-controlled: believed only when a setting says a proxy we run sets it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Lower-case, as the handlers see headers. CloudFront replaces a viewer's header of the same name.
ORIGIN_HEADER = "x-liveinsight-origin"
VIEWER_ADDRESS = "cloudfront-viewer-address"
VIEWER_COUNTRY = "cloudfront-viewer-country"
VIEWER_REGION = "cloudfront-viewer-country-region"  # ISO 3166-2's subdivision part: "BY"
VIEWER_CITY = "cloudfront-viewer-city"


def origin_digest(secret: str) -> str:
    """The hex SHA-256 of an origin secret, as the functions' settings hold it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def from_cloudfront(headers: Mapping[str, str], accepted: Sequence[bytes]) -> bool:
    """True when the request carries an origin secret whose digest is one of `accepted`."""
    presented = headers.get(ORIGIN_HEADER, "")
    if not presented or not accepted:
        return False
    digest = hashlib.sha256(presented.encode()).digest()
    # Every digest is compared, whichever matches: the time says nothing about the secret.
    matched = False
    for expected in accepted:
        matched |= hmac.compare_digest(digest, expected)
    return matched


def address(text: str, with_port: bool = False) -> str:
    """A normalised IP address from "1.2.3.4", "1.2.3.4:443", "2001:db8::1:443" or "[::1]:443";
    "" if there is none."""
    text = text.strip()
    if with_port and ":" in text:
        text = text.rsplit(":", 1)[0]  # CloudFront-Viewer-Address always ends with the port
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return ""


@dataclass(frozen=True)
class Viewer:
    ip: str
    country: str  # the CloudFront-Viewer-Country header as sent, "" when not believed
    region: str = ""  # CloudFront-Viewer-Country-Region, likewise
    city: str = ""  # CloudFront-Viewer-City, likewise


def viewer(
    headers: Mapping[str, str],
    source_ip: str,
    accepted: Sequence[bytes],
    trust_forwarded_for: bool = False,
) -> Viewer:
    """The viewer of a request (lower-case header names): CloudFront's headers if the request
    came through CloudFront, else (if trusted) X-Forwarded-For, else the connection's address."""
    location = ("", "", "")
    if from_cloudfront(headers, accepted):
        country, region, city = (
            headers.get(h, "") for h in (VIEWER_COUNTRY, VIEWER_REGION, VIEWER_CITY)
        )
        location = (country, region, city)
        if ip := address(headers.get(VIEWER_ADDRESS, ""), with_port=True):
            return Viewer(ip, *location)
    if trust_forwarded_for:
        for candidate in headers.get("x-forwarded-for", "").split(","):
            if ip := address(candidate):
                return Viewer(ip, *location)
    return Viewer(address(source_ip) or source_ip, *location)
