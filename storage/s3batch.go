package storage

import (
	"context"
	"fmt"
	"reflect"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/service/s3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	s3aws "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
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
	driver *s3aws.Driver // forms the keys (rootdirectory)
}

// Unwrapper is a storage driver that decorates another one; the deleter
// looks through it for the s3-aws driver underneath.
type Unwrapper interface {
	Unwrap() storagedriver.StorageDriver
}

// NewObjectDeleter returns a deleter sharing the s3-aws driver's own S3
// client: the same credentials (configuration, REGISTRY_STORAGE_S3_* or the
// AWS environment), endpoint, TLS settings (skipverify, AWS_CA_BUNDLE),
// signature version, dual-stack, acceleration and user agent, since they
// are parsed once, by the driver. ok is false for other drivers.
func NewObjectDeleter(driver storagedriver.StorageDriver) (d *ObjectDeleter, ok bool, err error) {
	for {
		u, isWrapper := driver.(Unwrapper)
		if !isWrapper {
			break
		}
		driver = u.Unwrap()
	}
	s3d, isS3 := driver.(*s3aws.Driver)
	if !isS3 {
		return nil, false, nil
	}
	client, bucket, err := s3Client(s3d)
	if err != nil {
		return nil, true, err
	}
	return &ObjectDeleter{client: client, bucket: bucket, driver: s3d}, true, nil
}

// s3Client reads the client and bucket out of the s3-aws driver, whose
// implementation is unexported but keeps both in exported fields. A
// distribution release that renames them fails here, loudly, at start
// rather than deleting with other settings than the driver's.
func s3Client(d *s3aws.Driver) (*s3.S3, string, error) {
	inner := reflect.ValueOf(d.Base.StorageDriver)
	if inner.Kind() == reflect.Pointer {
		inner = inner.Elem()
	}
	if inner.Kind() != reflect.Struct {
		return nil, "", fmt.Errorf("storage.s3: reading the s3-aws driver's client: unexpected %s", inner.Type())
	}
	client, okClient := fieldValue(inner, "S3").(*s3.S3)
	bucket, okBucket := fieldValue(inner, "Bucket").(string)
	if !okClient || client == nil || !okBucket {
		return nil, "", fmt.Errorf("storage.s3: reading the s3-aws driver's client: %s has no S3 and Bucket fields", inner.Type())
	}
	return client, bucket, nil
}

func fieldValue(v reflect.Value, name string) any {
	f := v.FieldByName(name)
	if !f.IsValid() || !f.CanInterface() {
		return nil
	}
	return f.Interface()
}

// DeleteFiles deletes the files (driver paths of objects, not
// directories). A file already gone is no error.
func (d *ObjectDeleter) DeleteFiles(ctx context.Context, paths []string) error {
	for start := 0; start < len(paths); start += MaxDeleteKeys {
		batch := paths[start:min(start+MaxDeleteKeys, len(paths))]
		ids := make([]*s3.ObjectIdentifier, len(batch))
		for i, p := range batch {
			ids[i] = &s3.ObjectIdentifier{Key: aws.String(d.driver.S3BucketKey(p))}
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
