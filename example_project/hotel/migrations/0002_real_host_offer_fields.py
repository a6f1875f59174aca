"""The offer takes the real hotel backend's fields, names and options."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("hotel", "0001_initial")]

    operations = [
        migrations.RenameField("offer", "details", "details_text"),
        migrations.RenameField("offer", "valid_until", "valid_to"),
        migrations.RemoveField("offer", "price"),
        migrations.RemoveField("offer", "updated_at"),
        migrations.AlterField("offer", "short_description", models.TextField()),
        migrations.AddField("offer", "details_html", models.TextField(blank=True)),
        migrations.AddField("offer", "tag", models.CharField(blank=True, max_length=50)),
        migrations.AddField("offer", "book_now_url", models.URLField(blank=True)),
        migrations.AlterField("offer", "photo", models.ImageField(blank=True, null=True, upload_to="offers/")),
    ]
