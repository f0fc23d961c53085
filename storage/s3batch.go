package storage

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"

	"github.com/dvcr/dvcr/config"
)

// MaxDeleteKeys is how many keys one DeleteObjects request takes: a
// caller with more keys sends slices of this size in parallel.
const MaxDeleteKeys = 1000

// ObjectDeleter deletes many files of the registry's S3 bucket in few
// requests. The storage driver deletes a path with a listing and a delete
// (two round trips per blob); a collection that knows the exact files it
// deletes sends a thousand of them per DeleteObjects request instead.
type ObjectDeleter struct {
	client *s3.S3
	bucket string
	root   string // rootdirectory, without slashes around it
}

// NewObjectDeleter builds the deleter from the s3 section of cfg, with the
// parameters the s3-aws driver reads; ok is false for other drivers.
func NewObjectDeleter(cfg *config.Config) (d *ObjectDeleter, ok bool, err error) {
	params, found := cfg.Registry.Storage["s3"]
	if !found {
		return nil, false, nil
	}
	str := func(key string) string {
		if v, ok := params[key]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	flag := func(key string, def bool) bool {
		if b, err := strconv.ParseBool(str(key)); err == nil {
			return b
		}
		return def
	}
	awsCfg := aws.NewConfig().WithRegion(str("region")).
		WithS3ForcePathStyle(flag("forcepathstyle", false)).
		WithDisableSSL(!flag("secure", true))
	if endpoint := str("regionendpoint"); endpoint != "" {
		awsCfg = awsCfg.WithEndpoint(endpoint)
	}
	if key := str("accesskey"); key != "" {
		awsCfg = awsCfg.WithCredentials(credentials.NewStaticCredentials(key, str("secretkey"), str("sessiontoken")))
	}
	sess, err := session.NewSession(awsCfg)
	if err != nil {
		return nil, true, fmt.Errorf("storage.s3: %w", err)
	}
	return &ObjectDeleter{client: s3.New(sess), bucket: str("bucket"), root: strings.Trim(str("rootdirectory"), "/")}, true, nil
}

// key is the object key of a storage driver path, as the s3-aws driver
// forms it.
func (d *ObjectDeleter) key(path string) string {
	return strings.TrimLeft(d.root+"/"+strings.TrimLeft(path, "/"), "/")
}

// DeleteFiles deletes the files (driver paths of objects, not
// directories). A file already gone is no error.
func (d *ObjectDeleter) DeleteFiles(ctx context.Context, paths []string) error {
	for start := 0; start < len(paths); start += MaxDeleteKeys {
		batch := paths[start:min(start+MaxDeleteKeys, len(paths))]
		ids := make([]*s3.ObjectIdentifier, len(batch))
		for i, p := range batch {
			ids[i] = &s3.ObjectIdentifier{Key: aws.String(d.key(p))}
		}
		resp, err := d.client.DeleteObjectsWithContext(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(d.bucket),
			Delete: &s3.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("deleting %d objects: %w", len(batch), err)
		}
		if len(resp.Errors) > 0 {
			e := resp.Errors[0]
			return fmt.Errorf("deleting %d objects: %d failed, the first %s: %s %s",
				len(batch), len(resp.Errors), aws.StringValue(e.Key), aws.StringValue(e.Code), aws.StringValue(e.Message))
		}
	}
	return nil
}
