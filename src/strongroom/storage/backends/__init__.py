"""BlobStore backends: ``local`` (a directory) and ``fsspec`` (any fsspec filesystem, e.g. S3)."""

from __future__ import annotations

from strongroom.core.config import Config
from strongroom.core.errors import ConfigurationError
from strongroom.storage.blobstore import BlobStore


def build_blob_store(config: Config) -> BlobStore:
    """The blob store ``config`` asks for."""
    if config.blob_store == "fsspec":
        from strongroom.storage.backends.fsspec import FsspecBlobStore, FsspecBlobStoreConfig

        if not config.blob_store_url:
            raise ConfigurationError("blob_store = 'fsspec' needs blob_store_url (e.g. s3://bucket/prefix)")
        return FsspecBlobStore(FsspecBlobStoreConfig(url=config.blob_store_url, options=config.blob_store_options))
    from strongroom.storage.backends.local import LocalBlobStore, LocalBlobStoreConfig

    return LocalBlobStore(LocalBlobStoreConfig(root=config.effective_blob_store_path))
