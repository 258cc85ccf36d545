"""Component lifecycle: signing keys, signatures and the trust store, the
content-addressed store and installation. Hot update and rollback of a running
component are ``system.update`` / ``system.rollback`` (airssys.actors) and, on a
node, ``airssys update`` / ``airssys rollback``.

* keys (``airssys keygen``): Ed25519, wasmsign2's key formats (docs/signing.md);
* signatures (``airssys sign`` / ``verify``): the WebAssembly tool-conventions
  format (wasmsign2), with the manifest's digest and the listing of the whole
  package (every file, its digest, its executable bit) bound into what is signed;
* the trust store (``airssys config trust``): public keys whose signatures make a
  component ``trusted`` for the security policy;
* the store (``airssys install`` / ``uninstall`` / ``packages`` / ``package``):
  immutable, content-addressed, verified on every read, its packages' trust decided
  against the trust store whenever they are used (docs/store.md).
"""

from ._install import InstallResult as InstallResult
from ._install import SignedFolder as SignedFolder
from ._install import folder_listing as folder_listing
from ._install import install_package as install_package
from ._install import sign_folder as sign_folder
from ._keys import KeyFormatError as KeyFormatError
from ._keys import generate_keypair as generate_keypair
from ._keys import key_id as key_id
from ._keys import load_private_key as load_private_key
from ._keys import load_public_key as load_public_key
from ._listing import listing as package_listing
from ._package import Installed as Installed
from ._package import PackageInUse as PackageInUse
from ._package import PackageNotFound as PackageNotFound
from ._package import StoreError as StoreError
from ._package import VersionConflict as VersionConflict
from ._signing import PACKAGE_SECTION as PACKAGE_SECTION
from ._signing import SIGNATURE_SECTION as SIGNATURE_SECTION
from ._signing import SignatureError as SignatureError
from ._signing import Verification as Verification
from ._signing import bind_manifest as bind_manifest
from ._signing import bind_package as bind_package
from ._signing import manifest_digest as manifest_digest
from ._signing import sign_component as sign_component
from ._signing import verify_component as verify_component
from ._store import Store as Store
from ._store import revocation_reason as revocation_reason
from ._store import split_spec as split_spec
from ._store import trusted_key_ids as trusted_key_ids
from ._trust import TrustedKey as TrustedKey
from ._trust import TrustStore as TrustStore
from ._trust import TrustStoreError as TrustStoreError
from ._trust import default_config_dir as default_config_dir
from ._wasm_sections import parse as parse_wasm_sections

__all__ = (
    "PACKAGE_SECTION",
    "SIGNATURE_SECTION",
    "InstallResult",
    "Installed",
    "KeyFormatError",
    "PackageInUse",
    "PackageNotFound",
    "SignatureError",
    "SignedFolder",
    "Store",
    "StoreError",
    "TrustStore",
    "TrustStoreError",
    "TrustedKey",
    "Verification",
    "VersionConflict",
    "bind_manifest",
    "bind_package",
    "default_config_dir",
    "folder_listing",
    "generate_keypair",
    "install_package",
    "key_id",
    "load_private_key",
    "load_public_key",
    "manifest_digest",
    "package_listing",
    "parse_wasm_sections",
    "revocation_reason",
    "sign_component",
    "sign_folder",
    "split_spec",
    "trusted_key_ids",
    "verify_component",
)
