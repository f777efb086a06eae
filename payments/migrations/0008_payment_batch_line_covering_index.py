# The payment_batch_line index becomes a CoveringIndex (payments/models/indexes.py): the same
# SQL on both databases (INCLUDE (status) on PostgreSQL, the plain index on SQLite), declared
# so that SQLite no longer warns models.W040. Only the migration state changes.

import payments.models.indexes
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0007_lifecycle_core'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(
                    model_name='payment',
                    name='payment_batch_line',
                ),
                migrations.AddIndex(
                    model_name='payment',
                    index=payments.models.indexes.CoveringIndex(
                        covering=('status',), fields=['batch', 'id'], name='payment_batch_line'
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
