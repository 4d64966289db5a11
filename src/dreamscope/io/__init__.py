"""Files: the only code that reads or writes them. Pictures (`images`), videos (`videos`), the provenance record
inside every output (`provenance`), folders of pictures (`folders`) and atomic writing (`files`)."""
